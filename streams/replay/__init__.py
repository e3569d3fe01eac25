"""`darkroom replay`: read back partitions by offset or time; copy, reprocess or export them."""
