package darkroom.contract;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.stream.Stream;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.data.TimeConversions;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericFixed;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.SchemaStore;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Darkroom's event contract as a Java consumer sees it, using only the reference implementations:
 * Apache Avro (SchemaNormalization, BinaryMessageDecoder, SchemaStore) and Apache Kafka's
 * KafkaConsumer. Every command prints one JSON object per line on stdout.
 *
 * <pre>
 *   fingerprints SCHEMAS_DIR [--markdown]
 *       every .avsc under SCHEMAS_DIR (recursively): file, full name, Parsing Canonical Form and
 *       CRC-64-AVRO fingerprint; --markdown prints the table of schemas/README.md instead
 *   decode READER.avsc MESSAGES_FILE...
 *       MESSAGES_FILE holds single-object-encoded messages, each prefixed by its length as a
 *       4-byte big-endian int; the writer schema is found by fingerprint among every .avsc in
 *       READER.avsc's folder (the released versions of that event type) and resolved to READER
 *   consume BOOTSTRAP TOPIC COUNT SCHEMAS_DIR [TIMEOUT_S] [consumer.property=value...]
 *       polls TOPIC from the start (fresh group, read_committed) until COUNT records came, or
 *       exits 2 after TIMEOUT_S (default 60); decodes each value, resolved to the newest version
 *       of its type under SCHEMAS_DIR. Every record of the last poll is printed, so more than
 *       COUNT lines mean more records than expected. Exits 1 if a value did not decode.
 * </pre>
 *
 * <p>Fingerprint byte order: SchemaNormalization.parsingFingerprint64 returns a Java long; the
 * single-object header stores that long's 8 bytes little-endian (least significant byte first).
 * "fingerprint" below is the hex of those wire bytes, the form Darkroom's Python code uses;
 * "fingerprint_long" is the long itself (signed decimal) and "fingerprint_long_hex" is
 * the long in hex (16 digits), i.e. the same 8 bytes in the reverse (big-endian) order.
 */
public final class Contract {
  static {
    // First of all static initialisers (MODEL below loads Avro, which creates its loggers):
    // warnings and errors only, to stderr, so that stdout stays one JSON object per line
    // (java -Dorg.slf4j.simpleLogger.defaultLogLevel=debug ... shows more).
    if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
      System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    }
    System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
  }

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
  private static final byte[] MAGIC = {(byte) 0xC3, (byte) 0x01};
  private static final int HEADER_LEN = MAGIC.length + 8;

  private Contract() {}

  public static void main(String[] args) throws Exception {
    if (args.length == 0) {
      usage();
    }
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    switch (args[0]) {
      case "fingerprints" -> {
        boolean markdown = args.length == 3 && args[2].equals("--markdown");
        if (args.length < 2 || args.length > 3 || (args.length == 3 && !markdown)) {
          usage();
        }
        fingerprints(out, Path.of(args[1]), markdown);
      }
      case "decode" -> {
        if (args.length < 3) {
          usage();
        }
        List<Path> files = new ArrayList<>();
        for (int i = 2; i < args.length; i++) {
          files.add(Path.of(args[i]));
        }
        System.exit(decode(out, Path.of(args[1]), files));
      }
      case "consume" -> {
        if (args.length < 5) {
          usage();
        }
        int next = 5;
        double timeoutS = 60;
        if (args.length > 5 && !args[5].contains("=")) {
          timeoutS = Double.parseDouble(args[5]);
          next = 6;
        }
        Map<String, String> extra = new LinkedHashMap<>();
        for (int i = next; i < args.length; i++) {
          String[] kv = args[i].split("=", 2);
          if (kv.length != 2) {
            usage();
          }
          extra.put(kv[0], kv[1]);
        }
        int count = Integer.parseInt(args[3]);
        System.exit(consume(out, args[1], args[2], count, Path.of(args[4]), timeoutS, extra));
      }
      default -> usage();
    }
  }

  private static void usage() {
    System.err.println(
        "usage: fingerprints SCHEMAS_DIR [--markdown]\n"
            + "       decode READER.avsc MESSAGES_FILE...\n"
            + "       consume BOOTSTRAP TOPIC COUNT SCHEMAS_DIR [TIMEOUT_S] [property=value...]");
    System.exit(64);
  }

  // ---- schemas -------------------------------------------------------------------------------

  /** One .avsc file, parsed by Avro's own parser, with the fingerprint Avro computes for it. */
  record SchemaFile(String file, Schema schema, long fingerprint) {
    String fullName() {
      return schema.getFullName();
    }
  }

  /** Every .avsc under {@code root}, in version order per folder (2.avsc before 10.avsc). */
  static List<SchemaFile> loadSchemas(Path root) throws IOException {
    return loadSchemas(root, root);
  }

  /** The same, each named by its path relative to {@code base} (e.g. PhotoFailed/2.avsc). */
  static List<SchemaFile> loadSchemas(Path root, Path base) throws IOException {
    List<Path> paths;
    try (Stream<Path> walk = Files.walk(root)) {
      paths = walk.filter(p -> p.toString().endsWith(".avsc") && Files.isRegularFile(p))
          .sorted(Comparator.comparing((Path p) -> root.relativize(p).getParent() == null
                  ? "" : root.relativize(p).getParent().toString())
              .thenComparing(Contract::versionOf)
              .thenComparing(Path::toString))
          .toList();
    }
    List<SchemaFile> schemas = new ArrayList<>();
    for (Path path : paths) {
      // A parser per file: versions of one type share a full name, which one parser refuses.
      Schema schema = new Schema.Parser().parse(Files.readString(path, StandardCharsets.UTF_8));
      String name = base.relativize(path).toString().replace('\\', '/');
      schemas.add(new SchemaFile(name, schema, SchemaNormalization.parsingFingerprint64(schema)));
    }
    return schemas;
  }

  private static long versionOf(Path path) {
    String stem = path.getFileName().toString().replaceFirst("\\.avsc$", "");
    try {
      return Long.parseLong(stem);
    } catch (NumberFormatException e) {
      return Long.MAX_VALUE;
    }
  }

  /** The long's 8 bytes as they stand in a single-object header: little-endian. */
  static String wireHex(long fingerprint) {
    StringBuilder hex = new StringBuilder(16);
    for (int i = 0; i < 8; i++) {
      hex.append(String.format(Locale.ROOT, "%02x", (fingerprint >>> (8 * i)) & 0xff));
    }
    return hex.toString();
  }

  static void fingerprints(PrintStream out, Path root, boolean markdown) throws IOException {
    List<SchemaFile> schemas = loadSchemas(root);
    if (markdown) {
      out.println("| file | full name | fingerprint (wire bytes, hex) | as Java's long |");
      out.println("| --- | --- | --- | --- |");
    }
    for (SchemaFile s : schemas) {
      if (markdown) {
        out.printf(Locale.ROOT, "| `%s` | `%s` | `%s` | `%d` |%n",
            s.file(), s.fullName(), wireHex(s.fingerprint()), s.fingerprint());
        continue;
      }
      ObjectNode row = NODES.objectNode();
      row.put("file", s.file());
      row.put("name", s.fullName());
      row.put("canonical_form", SchemaNormalization.toParsingForm(s.schema()));
      row.put("fingerprint", wireHex(s.fingerprint()));
      row.put("fingerprint_long", s.fingerprint());
      row.put("fingerprint_long_hex", String.format(Locale.ROOT, "%016x", s.fingerprint()));
      out.println(JSON.writeValueAsString(row));
    }
  }

  // ---- decoding ------------------------------------------------------------------------------

  /** The generic data model with java.time conversions, as a Java consumer would set it up. */
  static final GenericData MODEL = model();

  private static GenericData model() {
    GenericData model = new GenericData();
    // timestamp-millis fields then read as java.time.Instant: proof that Java honours the
    // logicalType although the Parsing Canonical Form (and so the fingerprint) leaves it out.
    model.addLogicalTypeConversion(new TimeConversions.TimestampMillisConversion());
    return model;
  }

  /** BinaryMessageDecoders, one per event type, that find writer schemas by fingerprint. */
  static final class Decoders {
    private final Map<Long, SchemaFile> byFingerprint = new HashMap<>();
    private final Map<String, SchemaFile> readers = new LinkedHashMap<>();
    private final Map<String, BinaryMessageDecoder<GenericRecord>> decoders = new HashMap<>();

    /** {@code known}: every writer schema to accept; {@code readers}: the one to read each as. */
    Decoders(List<SchemaFile> known, Collection<SchemaFile> readerSchemas) {
      for (SchemaFile reader : readerSchemas) {
        SchemaStore.Cache store = new SchemaStore.Cache();
        for (SchemaFile s : known) {
          if (s.fullName().equals(reader.fullName())) {
            store.addSchema(s.schema());
          }
        }
        readers.put(reader.fullName(), reader);
        decoders.put(reader.fullName(), new BinaryMessageDecoder<>(MODEL, reader.schema(), store));
      }
      for (SchemaFile s : known) {
        byFingerprint.put(s.fingerprint(), s);
      }
    }

    /** Newest version of every type under a schemas folder (the last of each in version order). */
    static Decoders forFolder(Path root) throws IOException {
      List<SchemaFile> all = loadSchemas(root);
      Map<String, SchemaFile> latest = new LinkedHashMap<>();
      for (SchemaFile s : all) {
        latest.put(s.fullName(), s);
      }
      return new Decoders(all, latest.values());
    }

    /**
     * Decodes one message. The fingerprint lookup here only picks the event type's decoder and
     * names the writer in the output; the decoder itself resolves the writer schema again from
     * its SchemaStore (and fails if Java computes another fingerprint than the one on the wire).
     */
    ObjectNode decode(byte[] message) throws IOException {
      ObjectNode out = NODES.objectNode();
      SchemaFile writer = null;
      if (message.length >= HEADER_LEN && message[0] == MAGIC[0] && message[1] == MAGIC[1]) {
        long fingerprint = ByteBuffer.wrap(message, 2, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        out.put("fingerprint", wireHex(fingerprint));
        writer = byFingerprint.get(fingerprint);
      }
      BinaryMessageDecoder<GenericRecord> decoder;
      SchemaFile reader;
      if (writer != null) {
        out.put("writer", writer.file());
        out.put("schema", writer.fullName());
        reader = readers.get(writer.fullName());
        decoder = decoders.get(writer.fullName());
      } else if (readers.size() == 1) {
        // A bad header or an unknown fingerprint: let Avro's decoder refuse it in its own words
        // (BadHeaderException, MissingSchemaException), as a consumer would see it.
        reader = readers.values().iterator().next();
        decoder = decoders.get(reader.fullName());
      } else {
        String start =
            message.length == 0 ? "nothing" : String.format(Locale.ROOT, "%02x", message[0]);
        throw new IOException("not a single-object message with a known fingerprint ("
            + message.length + " bytes, starting with " + start + ")");
      }
      if (decoder == null) {
        throw new IOException(writer.fullName() + " has no reader schema here");
      }
      GenericRecord record = decoder.decode(message);
      out.put("reader", reader.file());
      out.set("record", toJson(record, reader.schema()));
      return out;
    }
  }

  static int decode(PrintStream out, Path readerFile, List<Path> files) throws IOException {
    Path folder = readerFile.toAbsolutePath().normalize().getParent();
    // Named like the fingerprints command names them from schemas/: <EventType>/<n>.avsc.
    List<SchemaFile> versions = loadSchemas(folder, folder.getParent());
    String readerName = folder.getParent().relativize(readerFile.toAbsolutePath().normalize())
        .toString().replace('\\', '/');
    SchemaFile reader = versions.stream().filter(s -> s.file().equals(readerName)).findFirst()
        .orElseThrow(() -> new IOException(readerFile + " not found"));
    Decoders decoders = new Decoders(versions, List.of(reader));
    int failures = 0;
    for (Path file : files) {
      try (InputStream in = Files.newInputStream(file);
          DataInputStream data = new DataInputStream(in)) {
        while (true) {
          int length;
          try {
            length = data.readInt();
          } catch (EOFException end) {
            break;
          }
          byte[] message = data.readNBytes(length);
          if (message.length != length) {
            throw new IOException(
                file + ": truncated message (" + message.length + " of " + length + " bytes)");
          }
          try {
            out.println(JSON.writeValueAsString(decoders.decode(message)));
          } catch (IOException | RuntimeException e) {
            failures++;
            out.println(JSON.writeValueAsString(error(e)));
          }
        }
      }
    }
    return failures == 0 ? 0 : 1;
  }

  private static ObjectNode error(Exception e) {
    ObjectNode node = NODES.objectNode();
    node.put("error", e.getClass().getName() + ": " + e.getMessage());
    return node;
  }

  /** Plain JSON of a decoded value: unions unwrapped, bytes as base64, instants as ISO-8601. */
  static JsonNode toJson(Object value, Schema schema) {
    switch (schema.getType()) {
      case UNION:
        return toJson(value, schema.getTypes().get(MODEL.resolveUnion(schema, value)));
      case NULL:
        return NODES.nullNode();
      case RECORD: {
        GenericRecord record = (GenericRecord) value;
        ObjectNode node = NODES.objectNode();
        for (Schema.Field field : schema.getFields()) {
          node.set(field.name(), toJson(record.get(field.pos()), field.schema()));
        }
        return node;
      }
      case ARRAY: {
        ArrayNode node = NODES.arrayNode();
        for (Object item : (Collection<?>) value) {
          node.add(toJson(item, schema.getElementType()));
        }
        return node;
      }
      case MAP: {
        ObjectNode node = NODES.objectNode();
        for (Map.Entry<?, ?> e : ((Map<?, ?>) value).entrySet()) {
          node.set(e.getKey().toString(), toJson(e.getValue(), schema.getValueType()));
        }
        return node;
      }
      case STRING:
      case ENUM:
        return NODES.textNode(value.toString());
      case BYTES: {
        ByteBuffer buffer = ((ByteBuffer) value).duplicate();
        byte[] bytes = new byte[buffer.remaining()];
        buffer.get(bytes);
        return NODES.binaryNode(bytes);
      }
      case FIXED:
        return NODES.binaryNode(((GenericFixed) value).bytes());
      case INT:
        return NODES.numberNode((Integer) value);
      case LONG:
        if (value instanceof Instant instant) {
          return NODES.textNode(instant.toString());
        }
        return NODES.numberNode((Long) value);
      case FLOAT:
        return NODES.numberNode((Float) value);
      case DOUBLE:
        return NODES.numberNode((Double) value);
      case BOOLEAN:
        return NODES.booleanNode((Boolean) value);
      default:
        throw new IllegalArgumentException("unexpected Avro type " + schema.getType());
    }
  }

  // ---- Kafka ---------------------------------------------------------------------------------

  static int consume(PrintStream out, String bootstrap, String topic, int count, Path schemas,
      double timeoutS, Map<String, String> extra) throws Exception {
    Decoders decoders = Decoders.forFolder(schemas);
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ConsumerConfig.CLIENT_ID_CONFIG, "darkroom-contract-java");
    // A group of its own that never commits: reads from the start, leaves no trace.
    props.put(ConsumerConfig.GROUP_ID_CONFIG, "darkroom-contract-" + UUID.randomUUID());
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    // What a downstream consumer of a transactional producer (the Faust worker) must use.
    props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    // A group join takes about half the session timeout on tansu (see streams/kafka/profiles.py);
    // 6 s is also the lowest Apache Kafka accepts by default (group.min.session.timeout.ms).
    props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
    props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
    props.putAll(extra);
    int seen = 0;
    int failures = 0;
    long deadline = System.nanoTime() + (long) (timeoutS * 1e9);
    try (KafkaConsumer<byte[], byte[]> consumer =
        new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      consumer.subscribe(List.of(topic));
      while (seen < count) {
        long leftMs = (deadline - System.nanoTime()) / 1_000_000;
        if (leftMs <= 0) {
          break;
        }
        Duration wait = Duration.ofMillis(Math.min(leftMs, 500));
        for (ConsumerRecord<byte[], byte[]> rec : consumer.poll(wait)) {
          seen++;
          ObjectNode line;
          try {
            line = decoders.decode(rec.value());
            line.put("event_id", line.get("record").path("event_id").asText(null));
          } catch (IOException | RuntimeException e) {
            failures++;
            line = error(e);
          }
          line.put("topic", rec.topic());
          line.put("partition", rec.partition());
          line.put("offset", rec.offset());
          line.put("key", rec.key() == null ? null : new String(rec.key(), StandardCharsets.UTF_8));
          out.println(JSON.writeValueAsString(line));
        }
      }
    }
    if (seen < count) {
      System.err.printf(
          Locale.ROOT, "read %d of %d records from %s in %.0f s%n", seen, count, topic, timeoutS);
      return 2;
    }
    return failures == 0 ? 0 : 1;
  }
}
