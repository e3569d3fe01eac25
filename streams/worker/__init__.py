"""The stream application: a Faust worker that enriches uploads, with state in RocksDB tables."""
