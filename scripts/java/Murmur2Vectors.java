// Prints murmur2 vectors from Kafka's own Utils.murmur2 for the partitioner tests:
// one line per key: hex(key) murmur2(key) partition(key, 6) partition(key, 7).
import java.util.Random;
import org.apache.kafka.common.utils.Utils;

public class Murmur2Vectors {
    public static void main(String[] args) {
        int n = Integer.parseInt(args[0]);
        Random rnd = new Random(20261128L);
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < n; i++) {
            byte[] key = new byte[rnd.nextInt(40)];
            rnd.nextBytes(key);
            StringBuilder hex = new StringBuilder();
            for (byte b : key) hex.append(String.format("%02x", b));
            int h = Utils.murmur2(key);
            out.append(hex.length() == 0 ? "-" : hex).append(' ').append(h).append(' ')
               .append(Utils.toPositive(h) % 6).append(' ').append(Utils.toPositive(h) % 7).append('\n');
        }
        System.out.print(out);
    }
}
