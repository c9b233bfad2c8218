// A real third-party client for the interop tests: the JDK's java.net.http WebSocket, through an HTTP proxy
// chosen by a ProxySelector, as Java applications use it. Usage: java WsEcho.java URL PROXY_HOST PROXY_PORT TEXT
import java.net.InetSocketAddress;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;

public class WsEcho {
  public static void main(String[] args) throws Exception {
    HttpClient client = HttpClient.newBuilder()
        .proxy(ProxySelector.of(new InetSocketAddress(args[1], Integer.parseInt(args[2]))))
        .build();
    CompletableFuture<String> reply = new CompletableFuture<>();
    WebSocket ws = client.newWebSocketBuilder()
        .buildAsync(URI.create(args[0]), new WebSocket.Listener() {
          StringBuilder text = new StringBuilder();
          public CompletionStage<?> onText(WebSocket w, CharSequence data, boolean last) {
            text.append(data);
            if (last) reply.complete(text.toString());
            w.request(1);
            return null;
          }
          public void onError(WebSocket w, Throwable error) {
            reply.completeExceptionally(error);
          }
        })
        .get(10, TimeUnit.SECONDS);
    ws.sendText(args[3], true);
    System.out.println("echo: " + reply.get(10, TimeUnit.SECONDS));
    ws.sendClose(WebSocket.NORMAL_CLOSURE, "bye").get(5, TimeUnit.SECONDS);
  }
}
