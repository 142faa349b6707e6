// phigate-test-grpc: a small gRPC-over-HTTP/2 backend for integration tests (see README.md).
// One thread, poll(), one nghttp2 server session per connection; plain TCP (h2 with prior
// knowledge) or TLS with ALPN h2. Messages use gRPC's framing (1 byte compressed flag, 4 bytes
// big-endian length, payload); payloads are opaque bytes, no protobuf.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr const char* kProgram = "phigate-test-grpc";
using Clock = std::chrono::steady_clock;

struct Stream {
  std::map<std::string, std::string> headers;
  std::string in;  // request bytes not yet split into messages
  std::vector<std::string> messages;
  bool request_ended = false;
  bool responded = false;  // head submitted
  std::string out;         // response data queued
  bool out_end = false;
  std::vector<std::pair<std::string, std::string>> trailers;
  bool deferred = false;
  Clock::time_point due{};  // Sleep: answer then
  bool sleeping = false;
  bool reset_pending = false;  // Reset: RST_STREAM once the head and message left
};

std::string frame_message(std::string_view payload) {
  std::string m(5, '\0');
  const auto n = static_cast<std::uint32_t>(payload.size());
  m[1] = static_cast<char>(n >> 24);
  m[2] = static_cast<char>(n >> 16);
  m[3] = static_cast<char>(n >> 8);
  m[4] = static_cast<char>(n);
  return m + std::string(payload);
}

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  bool handshake_done = false;
  nghttp2_session* session = nullptr;
  std::map<std::int32_t, Stream> streams;
  std::string pending;  // bytes produced, not yet written
  bool dead = false;

  ~Conn() {
    if (session != nullptr) nghttp2_session_del(session);
    if (ssl != nullptr) SSL_free(ssl);
    if (fd >= 0) ::close(fd);
  }

  static ssize_t read_cb(nghttp2_session* s, std::int32_t id, std::uint8_t* buf, std::size_t len,
                         std::uint32_t* flags, nghttp2_data_source*, void* u) {
    auto* c = static_cast<Conn*>(u);
    auto it = c->streams.find(id);
    if (it == c->streams.end()) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    auto& st = it->second;
    const auto n = std::min(len, st.out.size());
    std::memcpy(buf, st.out.data(), n);
    st.out.erase(0, n);
    if (st.out.empty() && st.out_end) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!st.trailers.empty()) {
        std::vector<nghttp2_nv> nva;
        for (auto& [k, v] : st.trailers) {
          nva.push_back({reinterpret_cast<std::uint8_t*>(k.data()), reinterpret_cast<std::uint8_t*>(v.data()),
                         k.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
        }
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_submit_trailer(s, id, nva.data(), nva.size());
      }
      return static_cast<ssize_t>(n);
    }
    if (n == 0) {
      st.deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }

  void head(std::int32_t id, std::vector<std::pair<std::string, std::string>> fields, bool end) {
    auto& st = streams[id];
    st.responded = true;
    std::vector<std::pair<std::string, std::string>> all{{":status", "200"},
                                                         {"content-type", "application/grpc"}};
    if (st.headers.count("te")) all.push_back({"x-saw-te", st.headers["te"]});
    if (st.headers.count("x-forwarded-for")) all.push_back({"x-saw-xff", st.headers["x-forwarded-for"]});
    if (st.headers.count(":authority")) all.push_back({"x-saw-authority", st.headers[":authority"]});
    if (st.headers.count("x-forwarded-host")) all.push_back({"x-saw-xfh", st.headers["x-forwarded-host"]});
    for (auto& f : fields) all.push_back(std::move(f));
    std::vector<nghttp2_nv> nva;
    for (auto& [k, v] : all) {
      nva.push_back({reinterpret_cast<std::uint8_t*>(k.data()), reinterpret_cast<std::uint8_t*>(v.data()),
                     k.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    nghttp2_data_provider p{};
    p.read_callback = read_cb;
    nghttp2_submit_response(session, id, nva.data(), nva.size(), end ? nullptr : &p);
  }
  void send(std::int32_t id, std::string bytes, bool end,
            std::vector<std::pair<std::string, std::string>> trailers = {}) {
    auto& st = streams[id];
    st.out += bytes;
    if (end) {
      st.out_end = true;
      st.trailers = std::move(trailers);
    }
    if (st.deferred) {
      st.deferred = false;
      nghttp2_session_resume_data(session, id);
    }
  }
  void finish(std::int32_t id, std::string bytes, std::string status = "0") {
    send(id, std::move(bytes), true, {{"grpc-status", std::move(status)}});
  }

  /// The request's messages so far (framing split).
  static void split(Stream& st) {
    while (st.in.size() >= 5) {
      const auto u = [&](int i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(st.in[i])); };
      const std::uint32_t n = (u(1) << 24) | (u(2) << 16) | (u(3) << 8) | u(4);
      if (st.in.size() < 5 + n) return;
      st.messages.push_back(st.in.substr(5, n));
      st.in.erase(0, 5 + n);
    }
  }

  void answer(std::int32_t id, Stream& st) {
    const std::string path = st.headers[":path"];
    if (path == "/test.Echo/BidiStream") {
      // Echo each message as it arrives; end with the request.
      if (!st.responded) head(id, {}, false);
      std::string out;
      for (const auto& m : st.messages) out += frame_message(m);
      st.messages.clear();
      if (st.request_ended) {
        finish(id, out);
      } else if (!out.empty()) {
        send(id, out, false);
      }
      return;
    }
    if (!st.request_ended || st.responded) return;
    if (path == "/test.Echo/Unary") {
      head(id, {}, false);
      finish(id, frame_message(st.messages.empty() ? "" : st.messages.front()));
    } else if (path == "/test.Echo/ServerStream") {
      const int n = st.headers.count("x-count") ? std::atoi(st.headers["x-count"].c_str()) : 3;
      head(id, {}, false);
      std::string out;
      for (int i = 0; i < n && i < 10000; ++i) out += frame_message("msg-" + std::to_string(i));
      finish(id, out);
    } else if (path == "/test.Echo/ClientStream") {
      head(id, {}, false);
      finish(id, frame_message(std::to_string(st.messages.size())));
    } else if (path == "/test.Echo/Fail") {
      // Trailers-only (one HEADERS with END_STREAM).
      const std::string code = st.headers.count("x-grpc-status") ? st.headers["x-grpc-status"] : "2";
      head(id, {{"grpc-status", code}, {"grpc-message", "failed%20on%20purpose"}}, true);
    } else if (path == "/test.Echo/Sleep") {
      if (!st.sleeping) {
        const int ms = st.headers.count("x-sleep-ms") ? std::atoi(st.headers["x-sleep-ms"].c_str()) : 1000;
        st.sleeping = true;
        st.due = Clock::now() + std::chrono::milliseconds(ms);
        return;
      }
      head(id, {}, false);
      finish(id, frame_message("slept"));
    } else if (path == "/test.Echo/Trailers") {
      head(id, {}, false);
      send(id, frame_message("t"), true, {{"grpc-status", "0"}, {"x-custom-trailer", "custom-value"}});
    } else if (path == "/test.Echo/Reset") {
      // Misbehaving: a message, then RST_STREAM INTERNAL_ERROR instead of trailers.
      head(id, {}, false);
      send(id, frame_message("partial"), false);
      st.reset_pending = true;
    } else if (path == "/test.Echo/Goaway") {
      // Misbehaving: GOAWAY (no stream after this one), then the answer.
      nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR, nullptr, 0);
      head(id, {}, false);
      finish(id, frame_message("bye"));
    } else {
      head(id, {{"grpc-status", "12"}, {"grpc-message", "unknown%20method"}}, true);
    }
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* n, std::size_t nl,
                       const std::uint8_t* v, std::size_t vl, std::uint8_t, void* u) {
    auto* c = static_cast<Conn*>(u);
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
      c->streams[f->hd.stream_id].headers[std::string(reinterpret_cast<const char*>(n), nl)] =
          std::string(reinterpret_cast<const char*>(v), vl);
    }
    return 0;
  }
  static int on_data(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* d, std::size_t l,
                     void* u) {
    auto* c = static_cast<Conn*>(u);
    auto& st = c->streams[id];
    st.in.append(reinterpret_cast<const char*>(d), l);
    split(st);
    if (st.headers[":path"] == "/test.Echo/BidiStream") c->answer(id, st);
    return 0;
  }
  static int on_frame(nghttp2_session*, const nghttp2_frame* f, void* u) {
    auto* c = static_cast<Conn*>(u);
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      auto it = c->streams.find(f->hd.stream_id);
      if (it == c->streams.end()) return 0;
      it->second.request_ended = true;
      c->answer(f->hd.stream_id, it->second);
    }
    return 0;
  }
  static int on_close(nghttp2_session*, std::int32_t id, std::uint32_t, void* u) {
    static_cast<Conn*>(u)->streams.erase(id);
    return 0;
  }

  bool start() {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    const int rv = nghttp2_session_server_new(&session, cb, this);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) return false;
    const nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, iv, 1);
    return true;
  }

  void wake_sleepers() {
    const auto now = Clock::now();
    for (auto& [id, st] : streams) {
      if (st.sleeping && !st.responded && now >= st.due) answer(id, st);
    }
  }

  /// Reads what is there and feeds nghttp2; false when the connection ends.
  bool on_readable() {
    char buf[16384];
    for (int i = 0; i < 64; ++i) {
      ssize_t n;
      if (ssl != nullptr) {
        if (!handshake_done) {
          const int r = SSL_accept(ssl);
          if (r != 1) {
            const int e = SSL_get_error(ssl, r);
            return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
          }
          handshake_done = true;
          const unsigned char* proto = nullptr;
          unsigned len = 0;
          SSL_get0_alpn_selected(ssl, &proto, &len);
          if (len != 2 || std::memcmp(proto, "h2", 2) != 0) return false;
        }
        n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0) {
          const int e = SSL_get_error(ssl, static_cast<int>(n));
          return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
        }
      } else {
        n = ::read(fd, buf, sizeof buf);
        if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
        if (n == 0) return false;
      }
      if (nghttp2_session_mem_recv(session, reinterpret_cast<const std::uint8_t*>(buf),
                                   static_cast<std::size_t>(n)) < 0) {
        return false;
      }
    }
    return true;
  }

  /// Writes what nghttp2 has; false when the connection ends.
  bool flush() {
    if (ssl != nullptr && !handshake_done) return true;
    for (int i = 0; i < 1000; ++i) {
      if (pending.empty()) {
        const std::uint8_t* d = nullptr;
        const auto n = nghttp2_session_mem_send(session, &d);
        if (n < 0) return false;
        if (n == 0) {
          // Everything queued left: now reset the streams that asked for it (mid-stream reset).
          bool again = false;
          for (auto& [sid, st] : streams) {
            if (st.reset_pending && st.out.empty()) {
              st.reset_pending = false;
              nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, sid, NGHTTP2_INTERNAL_ERROR);
              again = true;
            }
          }
          if (again) continue;
          break;
        }
        pending.assign(reinterpret_cast<const char*>(d), static_cast<std::size_t>(n));
      }
      ssize_t w;
      if (ssl != nullptr) {
        w = SSL_write(ssl, pending.data(), static_cast<int>(pending.size()));
        if (w <= 0) {
          const int e = SSL_get_error(ssl, static_cast<int>(w));
          return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
        }
      } else {
        w = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
        if (w < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
      }
      pending.erase(0, static_cast<std::size_t>(w));
      if (!pending.empty()) return true;
    }
    return nghttp2_session_want_read(session) != 0 || nghttp2_session_want_write(session) != 0 ||
           !pending.empty();
  }
};

int select_h2(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
              void*) {
  // h2 only: a client that does not offer it gets no ALPN and is dropped after the handshake.
  for (unsigned i = 0; i < inlen;) {
    const unsigned len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == 2 && std::memcmp(in + i + 1, "h2", 2) == 0) {
      *out = in + i + 1;
      *outlen = 2;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "%s: %s\n", kProgram, m.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  std::string listen = "127.0.0.1:0";
  std::string cert, key;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--listen") {
      listen = value();
    } else if (a == "--tls-cert") {
      cert = value();
    } else if (a == "--tls-key") {
      key = value();
    } else if (a == "--help") {
      std::printf(
          "usage: %s [--listen 127.0.0.1:PORT] [--tls-cert CRT --tls-key KEY]\n"
          "  gRPC over HTTP/2 (prior knowledge, or TLS with ALPN h2). Prints 'ready HOST:PORT'.\n"
          "  Methods: /test.Echo/{Unary,ServerStream (x-count),ClientStream,BidiStream,Fail "
          "(x-grpc-status),\n"
          "  Sleep (x-sleep-ms),Trailers,Reset,Goaway}\n",
          kProgram);
      return 0;
    } else {
      die("unknown option " + a);
    }
  }
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) die("--listen HOST:PORT");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(listen.c_str() + colon + 1)));
  if (inet_pton(AF_INET, listen.substr(0, colon).c_str(), &addr.sin_addr) != 1) die("IPv4 address expected");
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind failed");
  if (::listen(lfd, 128) != 0) die("listen failed");
  socklen_t alen = sizeof addr;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &alen);

  SSL_CTX* ctx = nullptr;
  if (!cert.empty()) {
    ctx = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
      die("cannot load the certificate or key");
    }
    SSL_CTX_set_alpn_select_cb(ctx, select_h2, nullptr);
  }
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
  std::printf("ready %s:%u\n", ip, ntohs(addr.sin_port));
  std::fflush(stdout);

  std::vector<std::unique_ptr<Conn>> conns;
  for (;;) {
    std::vector<pollfd> fds{{lfd, POLLIN, 0}};
    int timeout = 1000;
    const auto now = Clock::now();
    for (auto& c : conns) {
      short ev = POLLIN;
      if (!c->pending.empty() || (c->session && nghttp2_session_want_write(c->session))) ev |= POLLOUT;
      fds.push_back({c->fd, ev, 0});
      for (auto& [id, st] : c->streams) {
        if (st.sleeping && !st.responded) {
          const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(st.due - now).count();
          timeout = std::max(0, std::min<int>(timeout, static_cast<int>(ms) + 1));
        }
      }
    }
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) die("poll failed");
    if (fds[0].revents & POLLIN) {
      for (int i = 0; i < 64; ++i) {
        const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
        if (fd < 0) break;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        auto c = std::make_unique<Conn>();
        c->fd = fd;
        if (ctx != nullptr) {
          c->ssl = SSL_new(ctx);
          SSL_set_fd(c->ssl, fd);
          SSL_set_accept_state(c->ssl);
        }
        if (c->start()) conns.push_back(std::move(c));
      }
    }
    // fds has one entry per connection polled; connections accepted just now have none yet.
    for (std::size_t i = 0; i < conns.size(); ++i) {
      auto& c = *conns[i];
      const short re = i + 1 < fds.size() ? fds[i + 1].revents : 0;
      bool ok = true;
      if (re & (POLLIN | POLLHUP | POLLERR)) ok = c.on_readable();
      c.wake_sleepers();
      if (ok) ok = c.flush();
      if (!ok) c.dead = true;
    }
    std::erase_if(conns, [](const std::unique_ptr<Conn>& c) { return c->dead; });
  }
}
