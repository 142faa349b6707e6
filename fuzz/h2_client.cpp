// libFuzzer target: upstream::detail::H2ClientSession (HTTP/2 to gRPC backends) fed arbitrary
// backend bytes — the backend is untrusted input too. Three requests are open (a GET, a POST with a
// body and trailers, a POST still sending); after a valid server SETTINGS frame (unless byte 0
// says raw) the rest arrives in reads of fuzzer-chosen sizes. Every touched stream's events are
// popped and their Data consumed, as the pool does. Checked after every call: events come only for
// streams we opened, in order (Headers before Data/Trailers, nothing after End or Reset), and the
// session's memory stays within its budget plus the slack nghttp2 needs to send its GOAWAY.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "../src/upstream/h2_client_impl.hpp"
#include "check.hpp"

namespace phigate::fuzz {
namespace {

using upstream::detail::H2ClientLimits;
using upstream::detail::H2ClientSession;
using upstream::detail::H2StreamEvent;
using Kind = H2StreamEvent::Kind;

// An empty SETTINGS frame: what a server sends first (RFC 9113 §3.4).
constexpr std::string_view kServerSettings{"\0\0\0\x04\0\0\0\0\0", 9};
constexpr std::size_t kSlack = 512 * 1024;

struct StreamState {
  bool headers = false;
  bool done = false;  // End or Reset seen
};

http::MessageHead request(std::string_view method, std::string_view path) {
  http::MessageHead h;
  h.method = method;
  h.target = path;
  h.headers.add("content-type", "application/grpc");
  h.headers.add("te", "trailers");
  return h;
}

}  // namespace
}  // namespace phigate::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace phigate::fuzz;
  if (size < 2) return 0;
  const std::uint8_t flags = data[0];
  const std::size_t step = 1 + static_cast<std::size_t>(data[1]);  // 1..256 bytes per read
  data += 2;
  size -= 2;
  H2ClientLimits limits;
  limits.memory_bytes = 1u << 20;
  limits.max_header_list_bytes = 8 * 1024;
  limits.max_unknown_resets = 20;
  limits.max_control_frames = 200;
  limits.max_queued_events_bytes = 64 * 1024;
  H2ClientSession s(limits);
  if (!s.ok()) return 0;
  std::map<std::int32_t, StreamState> open;
  const auto a = s.submit(request("GET", "/test.Echo/Unary"), "grpc.test", "http", true);
  const auto b = s.submit(request("POST", "/test.Echo/ClientStream"), "grpc.test", "http", false);
  const auto c = s.submit(request("POST", "/test.Echo/BidiStream"), "grpc.test", "http", false);
  for (const auto id : {a, b, c}) {
    if (id > 0) open[id] = {};
  }
  if (b > 0) {
    s.send_body(b,
                std::string_view("\0\0\0\0\x03"
                                 "abc",
                                 8),
                false);
    phigate::http::HeaderList t;
    t.add("x-trailer", "1");
    s.send_trailers(b, t);
  }
  if (c > 0)
    s.send_body(c,
                std::string_view("\0\0\0\0\x01"
                                 "x",
                                 6),
                false);
  std::string out;
  s.produce(out);
  out.clear();

  const auto drain = [&] {
    for (const auto id : s.take_touched()) {
      auto it = open.find(id);
      FUZZ_CHECK(it != open.end(), "an event for a stream we never opened");
      H2StreamEvent e;
      int n = 0;
      while (s.pop(id, e)) {
        FUZZ_CHECK(++n < 100000, "endless events");
        auto& st = it->second;
        FUZZ_CHECK(!st.done, "an event after End or Reset");
        switch (e.kind) {
          case Kind::Headers:
            FUZZ_CHECK(!st.headers, "a second final response head");
            FUZZ_CHECK(e.status >= 200 && e.status <= 999, "a final head with a non-final status");
            st.headers = true;
            break;
          case Kind::Data:
          case Kind::Trailers:
            FUZZ_CHECK(st.headers, "body or trailers before the response head");
            if (e.kind == Kind::Data) s.consume(id, e.data.size());
            break;
          case Kind::End:
            FUZZ_CHECK(st.headers, "a response that ended without a head");
            st.done = true;
            break;
          case Kind::Reset:
            st.done = true;
            break;
        }
      }
    }
    FUZZ_CHECK(s.memory() <= limits.memory_bytes + kSlack, "memory over the budget");
  };

  if ((flags & 1) == 0) s.receive(kServerSettings);
  for (std::size_t off = 0; off < size;) {
    const std::size_t n = std::min<std::size_t>(step, size - off);
    const bool alive = s.receive(std::string_view(reinterpret_cast<const char*>(data) + off, n));
    off += n;
    drain();
    if (s.want_write()) {
      s.produce(out);
      out.clear();
    }
    drain();
    if (!alive) break;
  }
  for (const auto& [id, st] : open) s.release(id);
  drain();
  return 0;
}
