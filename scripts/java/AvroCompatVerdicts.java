// Apache Avro's reference verdicts for tests/fixtures/avro-compat/pairs.json:
// SchemaCompatibility.checkReaderWriterCompatibility in both directions.
// Run by scripts/gen-avro-compat-verdicts; prints JSON on stdout.

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;

public class AvroCompatVerdicts {
  public static void main(String[] args) throws Exception {
    ObjectMapper mapper = new ObjectMapper();
    JsonNode pairs = mapper.readTree(new File(args[0]));
    ArrayNode out = mapper.createArrayNode();
    for (JsonNode pair : pairs) {
      ObjectNode o = out.addObject();
      o.put("name", pair.get("name").asText());
      // A fresh parser per schema: names must not leak between them.
      Schema reader = new Schema.Parser().parse(pair.get("reader").toString());
      Schema writer = new Schema.Parser().parse(pair.get("writer").toString());
      verdict(o.putObject("reader_reads_writer"), reader, writer);
      verdict(o.putObject("writer_reads_reader"), writer, reader);
    }
    System.out.println(mapper.writerWithDefaultPrettyPrinter().writeValueAsString(out));
  }

  static void verdict(ObjectNode o, Schema reader, Schema writer) {
    try {
      SchemaCompatibility.SchemaPairCompatibility c = SchemaCompatibility.checkReaderWriterCompatibility(reader, writer);
      o.put("verdict", c.getType().name());
      ArrayNode list = o.putArray("incompatibilities");
      for (SchemaCompatibility.Incompatibility i : c.getResult().getIncompatibilities()) {
        list.add(i.getType() + " at " + i.getLocation() + ": " + i.getMessage());
      }
    } catch (RuntimeException e) {
      // Avro throws, e.g., when a reader field's aliases match two writer fields.
      o.put("verdict", "ERROR");
      o.put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
    }
  }
}
