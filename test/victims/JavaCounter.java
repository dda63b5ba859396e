/*
 * A JVM victim: garbage-collected heap, a dozen JVM threads (GC, JIT compilers, signal
 * dispatcher), a worker thread of its own. Every 200 ms it prints "COUNT n PASS" when
 * its state is whole: the counter went up by exactly one, a 4 MiB array still holds
 * its pattern, a map built at start has all its entries, and the worker is alive and
 * counting; otherwise "COUNT n FAIL why".
 */
import java.util.HashMap;
import java.util.concurrent.atomic.AtomicLong;

public class JavaCounter {
  public static void main(String[] args) throws Exception {
    int[] pattern = new int[1 << 20];
    for (int i = 0; i < pattern.length; i++) pattern[i] = i * 31 + 7;
    HashMap<String, Integer> map = new HashMap<>();
    for (int i = 0; i < 10000; i++) map.put("key" + i, i);
    AtomicLong ticks = new AtomicLong();
    Thread worker = new Thread(() -> {
      while (true) {
        ticks.incrementAndGet();
        try { Thread.sleep(10); } catch (InterruptedException e) { return; }
      }
    });
    worker.setDaemon(true);
    worker.start();
    long last = -1;
    long lastTicks = -1;
    for (long n = 0; ; n++) {
      String why = null;
      if (n != last + 1) why = "counter jumped from " + last + " to " + n;
      for (int i = 0; why == null && i < pattern.length; i++) {
        if (pattern[i] != i * 31 + 7) why = "array differs at " + i;
      }
      for (int i = 0; why == null && i < 10000; i++) {
        Integer v = map.get("key" + i);
        if (v == null || v != i) why = "map lost key" + i;
      }
      long t = ticks.get();
      if (why == null && n > 0 && (!worker.isAlive() || t <= lastTicks)) why = "worker stopped at " + t;
      System.out.println("COUNT " + n + (why == null ? " PASS" : " FAIL " + why));
      last = n;
      lastTicks = t;
      Thread.sleep(200);
    }
  }
}
