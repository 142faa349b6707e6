// libFuzzer target: http::H2ServerSession fed arbitrary client bytes (after a valid preface and
// SETTINGS unless byte 0 says raw), in reads of fuzzer-chosen sizes, answering every Request the
// way the proxy would (body taken and consumed, a response with data and trailers, or a reset),
// and checking the codec's event contract and its memory bound after every call.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "phigate/http/h2_server.hpp"

namespace phigate::fuzz {
namespace {

using http::H2Event;
using Kind = H2Event::Kind;

constexpr std::string_view kPrefaceAndSettings{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0", 33};
// Allocations nghttp2 may make past the budget to send its GOAWAY, plus one frame's worth of our
// buffers between two checks.
constexpr std::size_t kSlack = 512 * 1024;

bool is_lower_token(std::string_view s) {
  for (const char c : s) {
    if (c >= 'A' && c <= 'Z') return false;
  }
  return !s.empty();
}

class Driver {
 public:
  Driver(const http::H2Options& o, std::uint8_t flags) : opts_(o), flags_(flags), s_(o) {}

  void feed(std::string_view bytes) {
    const auto st = s_.feed(bytes.data(), bytes.size(), now_);
    now_ += std::chrono::milliseconds(1 + (flags_ >> 5));
    if (closed_) FUZZ_CHECK(st == http::H2ServerSession::Status::Closed, "feed after Closed returned Ok");
    if (st == http::H2ServerSession::Status::Closed) {
      FUZZ_CHECK(!s_.close_reason().empty(), "Closed without a close_reason");
      if (closed_) FUZZ_CHECK(s_.events().empty(), "events after the connection closed");
      closed_ = true;
    }
    handle();
  }

  void output(std::size_t max) {
    std::string out;
    s_.take_output(out, max);
    FUZZ_CHECK(out.size() <= max, "take_output beyond max");
    written_ += out.size();
    handle();
  }

  void finish() {
    for (int i = 0; i < 64 && s_.want_write(); ++i) output(16384);
    // Every stream the caller knows is still open or closed exactly once: none is left half-known.
    for (const auto& [id, st] : streams_) {
      if (!st.closed) FUZZ_CHECK(s_.request(id) != nullptr || st.rejected, "known open stream without state");
    }
  }

 private:
  struct State {
    bool requested = false;
    bool rejected = false;
    bool ended = false;
    bool closed = false;
    bool answered = false;
  };

  void handle() {
    FUZZ_CHECK(s_.memory() <= opts_.http2.connection_memory_bytes + kSlack, "memory() over the budget");
    for (const auto id : closed_before_)
      FUZZ_CHECK(s_.request(id) == nullptr, "request() still there after Closed");
    closed_before_.clear();
    const std::vector<H2Event> events = s_.events();  // the API calls below may not clear it, but copy anyway
    std::vector<std::int32_t> to_answer;
    for (const auto& e : events) {
      FUZZ_CHECK(e.stream > 0 && (e.stream & 1) == 1, "event for a stream the client cannot open");
      auto it = streams_.find(e.stream);
      const bool known = it != streams_.end();
      switch (e.kind) {
        case Kind::Request: {
          FUZZ_CHECK(!known, "Request for a stream already reported");
          auto& st = streams_[e.stream];
          st.requested = true;
          const auto* r = s_.request(e.stream);
          FUZZ_CHECK(r != nullptr && r->head_complete, "Request without a complete head");
          FUZZ_CHECK(r->head.version_major == 2 && r->head.version_minor == 0 && !r->head.chunked,
                     "request head not HTTP/2.0");
          FUZZ_CHECK(r->head.method != "CONNECT" && !r->head.method.empty() && !r->head.target.empty(),
                     "CONNECT or empty method/path reported");
          FUZZ_CHECK(r->head.headers.size() >= 1 && r->head.headers.begin()->name == "host" &&
                         r->head.headers.count("host") == 1,
                     "host not first or not once");
          for (const auto& f : r->head.headers) {
            FUZZ_CHECK(is_lower_token(f.name) && f.name[0] != ':', "field name not lower-case or pseudo");
            FUZZ_CHECK(f.name != "connection" && f.name != "keep-alive" && f.name != "proxy-connection" &&
                           f.name != "transfer-encoding" && f.name != "upgrade",
                       "connection-specific field reported");
            FUZZ_CHECK(f.name != "te" || http::iequals(f.value, "trailers"),
                       "te other than trailers reported");
            FUZZ_CHECK(f.value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos,
                       "CR, LF or NUL in a reported value");
          }
          FUZZ_CHECK(r->head.headers.size() <= opts_.header_count + 1, "more fields than header_count");
          to_answer.push_back(e.stream);
          break;
        }
        case Kind::Rejected: {
          FUZZ_CHECK(!known, "Rejected for a stream already reported");
          streams_[e.stream].rejected = true;
          FUZZ_CHECK(e.status == 0 || e.status == 400 || e.status == 431,
                     "Rejected with an unexpected status");
          FUZZ_CHECK(!e.reason.empty(), "Rejected without a reason");
          break;
        }
        case Kind::Data:
          FUZZ_CHECK(known && it->second.requested && !it->second.closed && !it->second.ended,
                     "Data for a stream not requested, closed or ended");
          if (s_.request(e.stream) != nullptr) {
            std::string body;
            s_.take_body(e.stream, body);
            if ((flags_ & 4) == 0) s_.consume(e.stream, body.size());
          }
          break;
        case Kind::End:
          FUZZ_CHECK(known && it->second.requested && !it->second.closed && !it->second.ended,
                     "End for a stream not requested, closed or ended twice");
          it->second.ended = true;
          break;
        case Kind::Reset:
        case Kind::Writable:
          FUZZ_CHECK(known && it->second.requested && !it->second.closed,
                     "Reset/Writable for an unknown stream");
          break;
        case Kind::Closed:
          FUZZ_CHECK(known && !it->second.closed, "Closed for an unknown stream or twice");
          it->second.closed = true;
          closed_before_.push_back(e.stream);
          break;
      }
    }
    for (const auto id : to_answer) answer(id);
  }

  void answer(std::int32_t id) {
    auto& st = streams_[id];
    if (st.answered || st.closed) return;
    st.answered = true;
    switch ((flags_ >> 2) & 3) {
      case 0: {
        http::HeaderList h;
        h.add("Content-Type", "text/plain");
        h.add("Connection", "close");  // must never reach the client
        h.add("X-Bad", "a\r\nb");
        s_.submit_response(id, 200, h, false);
        s_.send_data(id, std::string(100 + (id % 7) * 20000, 'r'));
        http::HeaderList t;
        t.add("grpc-status", "0");
        s_.end_response(id, &t);
        break;
      }
      case 1:
        s_.submit_response(id, 204, {}, true);
        break;
      case 2:
        s_.reset(id, http::kH2Cancel);
        break;
      default:
        if (id % 3 == 0) s_.shutdown();
        s_.submit_response(id, 404, {}, false);
        s_.send_data(id, "nope");
        s_.end_response(id, nullptr);
        break;
    }
  }

  http::H2Options opts_;
  std::uint8_t flags_;
  http::H2ServerSession s_;
  http::H2Clock::time_point now_{std::chrono::hours(1)};
  std::map<std::int32_t, State> streams_;
  std::vector<std::int32_t> closed_before_;  // Closed in the previous batch: request() must be null now
  bool closed_ = false;
  std::size_t written_ = 0;
};

}  // namespace
}  // namespace phigate::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace phigate;
  if (size < 3) return 0;
  const std::uint8_t flags = data[0];
  const std::uint8_t small = data[1];
  std::uint32_t seed = data[2];
  std::string input;
  // Most inputs start as a real client does, so the fuzzer spends its time on frames.
  if ((flags & 3) != 3) input.append(fuzz::kPrefaceAndSettings);
  input.append(reinterpret_cast<const char*>(data) + 3, size - 3);

  http::H2Options o;
  if (small & 1) {
    o.http2.max_concurrent_streams = 4;
    o.http2.max_header_list_bytes = 2048;
    o.http2.max_continuation_frames = 2;
    o.http2.initial_window_bytes = 4096;
    o.http2.reset_budget = 8;
    o.http2.reset_refill = 1;
    o.http2.control_budget = 32;
    o.http2.control_refill = 4;
    o.http2.connection_memory_bytes = 192 * 1024;
    o.header_count = 8;
  }
  fuzz::Driver d(o, flags);
  std::size_t off = 0;
  // Reads of fuzzer-chosen sizes (seed 0: one read); bounded by the input length.
  while (off < input.size()) {
    std::size_t n = input.size() - off;
    if (seed != 0) {
      seed = seed * 1103515245u + 12345u;
      n = std::min<std::size_t>(n, 1 + (seed >> 16) % 97);
    }
    d.feed(std::string_view(input).substr(off, n));
    d.output((small & 2) ? 100 : 65536);
    off += n;
  }
  d.finish();
  return 0;
}
