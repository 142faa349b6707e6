// A malicious backend against real phigate: whatever phigate-test-upstream writes out of turn (stray
// responses, bodies where none belong, 1xx floods, answers before the body, stale keep-alive), no
// client may ever receive bytes of another exchange. The attack is response-queue poisoning: bytes
// left on a pooled upstream connection beyond what RFC 9112 §6.3 framing explains become the "answer"
// to the next client's request, handing it someone else's PHI. Every such byte carries the marker
// "PHI-of-someone-else", and every request carries its own X-Request-Id, which the backend echoes
// (phigate keeps it: 127.0.0.1 is a trusted proxy here). One worker, so that every client shares the
// one upstream pool the misbehaving exchange returned its connection to.
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <set>
#include <string_view>
#include <thread>

#include "phigate_fixture.hpp"
#include "support/hash.hpp"

namespace phigate::test {
namespace {

constexpr std::string_view kMarker = "PHI-of-someone-else";
// More interim responses than any client needs (RFC 9110 §15.2 sets no limit; phigate must).
constexpr int kMaxInterimsSeen = 1000;

/// One request a client sent; targets are unique per test, so the backend's record identifies it.
struct Sent {
  std::string method;
  std::string target;
  std::string id;
};

/// What a client got back: the final response (if any), how many 1xx came before it, and whether the
/// marker was anywhere in them or in the bytes left unread on the connection.
struct Answer {
  std::optional<HttpResponse> final;
  int interims = 0;
  bool marker_seen = false;
  std::string error;
};

bool contains_marker(std::string_view s) {
  return s.find(kMarker) != std::string_view::npos;
}

bool contains_marker(const HttpResponse& r) {
  if (contains_marker(r.body) || contains_marker(r.reason)) return true;
  for (const auto& [name, value] : r.headers) {
    if (contains_marker(name) || contains_marker(value)) return true;
  }
  return false;
}

/// Status, fields and the start of the body, for failure messages.
std::string describe(const HttpResponse& r) {
  std::string out = std::to_string(r.status) + " " + r.reason;
  for (const auto& [name, value] : r.headers) out += " | " + name + ": " + value;
  return out + " | body: " + r.body.substr(0, 120);
}

/// Resident set of a process in KiB (VmRSS), or -1 when unreadable.
long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

class UpstreamDesyncTest : public PhigateTest {
 protected:
  void SetUp() override {
    PhigateTest::SetUp();
    up_.emplace(start_upstream());
    std::string yaml =
        config("  - host: app.example\n    paths:\n      - { path: /, type: Prefix, backends: [\"" +
                   up_->address() + "\"] }\n",
               "trusted_proxies: [\"127.0.0.1/32\"]\n"
               "timeouts: { upstream_read: 5s }\n"
               "upstream: { keepalive_connections: 8 }\n");
    // One worker: the misbehaving exchange and every later client share one upstream pool.
    const auto at = yaml.find("workers: 2\n");
    ASSERT_NE(at, std::string::npos) << "fixture config changed: " << yaml;
    yaml.replace(at, 11, "workers: 1\n");
    pg_.emplace(start_phigate(yaml));
  }

  TlsClient connect() {
    auto c = TlsClient::connect("127.0.0.1", pg_->https, {.sni = "app.example", .ca_file = ca_.cert});
    if (!c) throw std::runtime_error("connect to phigate: " + c.error);
    return std::move(*c.client);
  }

  /// One good exchange first, so that the next one goes over a pooled (reused) connection, the
  /// usual case for a misbehaving exchange.
  void warm_pool() {
    auto w = connect();
    const Sent s = next("GET", "/warm");
    expect_own(exchange(w, s), s, {200});
  }

  /// A fresh request id (32 hex digits, like phigate's own) and a target no other request uses.
  Sent next(const std::string& method, const std::string& path_and_query) {
    char id[33];
    const int n = ++n_;
    std::snprintf(id, sizeof id, "de5ec0de%024d", n);
    const std::string sep = path_and_query.find('?') == std::string::npos ? "?" : "&";
    return Sent{method, path_and_query + sep + "n=" + std::to_string(n), id};
  }

  static std::string request_bytes(const Sent& s, const std::string& body = "") {
    std::string req =
        s.method + " " + s.target + " HTTP/1.1\r\nHost: app.example\r\nX-Request-Id: " + s.id + "\r\n";
    if (!body.empty() || s.method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    return req + "\r\n" + body;
  }

  /// Writes the request and reads interim responses and the final one (bounded in count and time).
  Answer exchange(TlsClient& c, const Sent& s, const std::string& body = "",
                  std::chrono::milliseconds timeout = 10s) {
    if (!c.write(request_bytes(s, body), timeout)) {
      Answer a;
      a.error = "write: " + c.error();
      return a;
    }
    return read_answer(c, s, timeout);
  }

  /// Reads interim responses and the final one for `s` (bounded in count and time).
  Answer read_answer(TlsClient& c, const Sent& s, std::chrono::milliseconds timeout = 10s) {
    Answer a;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (a.interims <= kMaxInterimsSeen) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) {
        a.error = "no final response in time";
        break;
      }
      auto r = c.read_http_response(left, s.method == "HEAD");
      if (!r) {
        a.error = "read: " + c.error();
        break;
      }
      a.marker_seen = a.marker_seen || contains_marker(*r);
      if (r->status >= 100 && r->status < 200) {
        ++a.interims;
        continue;
      }
      a.final = std::move(r);
      break;
    }
    // Whatever else arrived (the start of an unparsable response, or bytes after this one).
    a.marker_seen = a.marker_seen || contains_marker(c.buffered());
    return a;
  }

  /// The backend's request records (not the marker_sent lines) whose target is `target`.
  std::vector<std::string> records_for(const std::string& target) const {
    std::vector<std::string> out;
    for (auto& line : up_->records()) {
      if (!json_field(line, "method").empty() && json_field(line, "target") == target) out.push_back(line);
    }
    return out;
  }

  /// Waits (bounded) until the backend has written every marker byte for `count` responses: the next
  /// client then goes while the marker is already on phigate's pooled connection.
  void wait_markers_sent(std::size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      const auto recs = up_->records();
      const auto n =
          static_cast<std::size_t>(std::count_if(recs.begin(), recs.end(), [](const std::string& l) {
            return l.find("\"marker_sent\":true") != std::string::npos;
          }));
      if (n >= count) return;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "backend never reported its marker bytes sent";
      std::this_thread::sleep_for(5ms);  // poll interval (tests/support/README.md)
    }
  }

  /// The answer is a well-formed one for `s`: its status is in `allowed`, it carries no marker, and a
  /// backend answer is the one to this very request (echoed id, and the record it names has our target).
  void expect_own(const Answer& a, const Sent& s, const std::set<int>& allowed) {
    SCOPED_TRACE(s.method + " " + s.target);
    EXPECT_FALSE(a.marker_seen) << "a client received another exchange's bytes";
    ASSERT_TRUE(a.final) << a.error;
    const HttpResponse& r = *a.final;
    SCOPED_TRACE("response: " + describe(r));
    EXPECT_TRUE(allowed.count(r.status)) << "unexpected status";
    const auto echoes = r.header_values("X-Echo-Request-Id");
    for (const auto& e : echoes) EXPECT_EQ(e, s.id) << "a client received the answer to another request";
    if (r.status == 502) return;  // phigate's own answer
    EXPECT_EQ(echoes.size(), 1u) << "a backend answer without our echo";
    const auto conn = r.header("X-Upstream-Conn");
    const auto seq = r.header("X-Upstream-Seq");
    ASSERT_FALSE(conn.empty() || seq.empty()) << "backend answer without its connection fields";
    bool found = false;
    for (const auto& line : up_->records()) {
      if (json_field(line, "conn") != conn || json_field(line, "seq") != seq ||
          json_field(line, "method").empty()) {
        continue;
      }
      found = true;
      EXPECT_EQ(json_field(line, "target"), s.target) << "the backend answered another request: " << line;
      EXPECT_EQ(record_header(line, "x-request-id"), s.id) << line;
    }
    EXPECT_TRUE(found) << "no backend record for conn " << conn << " seq " << seq;
  }

  /// Clients B, C, D on new connections, and client A again on its own connection when phigate kept it,
  /// each send a GET to the same backend and must get their own 200.
  void expect_others_served(TlsClient& a, const Answer& a_answer) {
    for (int i = 0; i < 3; ++i) {
      auto c = connect();
      const Sent s = next("GET", "/other");
      expect_own(exchange(c, s), s, {200});
    }
    const bool a_kept = a_answer.final && !a.closed() && a_answer.final->header("Connection") != "close";
    if (!a_kept) return;
    const Sent s = next("GET", "/again");
    expect_own(exchange(a, s), s, {200});
  }

  std::optional<Upstream> up_;
  std::optional<Phigate> pg_;
  std::atomic<int> n_ = 0;  // clients on several threads take ids
};

/// One misbehaviour: what client A sends, and which statuses A may see (the backend's or 502).
struct Mode {
  std::string name;
  std::string method;
  std::string target;
  std::set<int> allowed;
  bool marker = true;          ///< the backend writes the marker (wait for it before the next client)
  std::size_t body_bytes = 0;  ///< request body size
  bool may_truncate = false;   ///< the backend breaks the response itself (no final answer is fine)
};

// ctest names the instances after this (instead of dumping the object's bytes).
void PrintTo(const Mode& m, std::ostream* os) {
  *os << m.name;
}

class UpstreamDesyncModeTest : public UpstreamDesyncTest, public ::testing::WithParamInterface<Mode> {};
class UpstreamDesyncPipelinedTest : public UpstreamDesyncModeTest {};

TEST_P(UpstreamDesyncModeTest, Desync_MisbehavingBackend_NoClientGetsAnothersBytes) {
  const Mode& m = GetParam();
  warm_pool();
  auto a = connect();
  const Sent sa = next(m.method, m.target);
  const Answer aa = exchange(a, sa, pattern_bytes(m.body_bytes));
  if (m.may_truncate && !aa.final) {
    EXPECT_FALSE(aa.marker_seen);
  } else {
    expect_own(aa, sa, m.allowed);
  }
  if (m.marker) wait_markers_sent(1);
  expect_others_served(a, aa);
  // The misbehaving request reached the backend exactly once: a response that failed after the
  // request was sent is never a reason to send it again.
  EXPECT_EQ(records_for(sa.target).size(), 1u);
}

// The same misbehaviour with a request pipelined behind it on the same connection (RFC 9112 §9.3.2):
// phigate already holds the next request while the bad exchange is in flight, and that request must get
// its own answer, not the leftovers.
TEST_P(UpstreamDesyncPipelinedTest, Desync_MisbehavingBackendPipelined_NextRequestGetsItsOwn) {
  const Mode& m = GetParam();
  warm_pool();
  auto a = connect();
  const Sent sa = next(m.method, m.target);
  const Sent sp = next("GET", "/pipelined");
  ASSERT_TRUE(a.write(request_bytes(sa, pattern_bytes(m.body_bytes)) + request_bytes(sp))) << a.error();
  const Answer aa = read_answer(a, sa);
  if (m.may_truncate && !aa.final) {
    EXPECT_FALSE(aa.marker_seen);
  } else {
    expect_own(aa, sa, m.allowed);
  }
  // phigate may close after the bad exchange (then the pipelined request goes unanswered, which the
  // client can retry); if it answers, the answer is the pipelined request's own.
  const bool closing = !aa.final || aa.final->header("Connection") == "close";
  const Answer ap = read_answer(a, sp);
  if (closing && !ap.final) {
    EXPECT_FALSE(ap.marker_seen) << "a client received another exchange's bytes";
  } else {
    expect_own(ap, sp, {200});
  }
  if (m.marker) wait_markers_sent(1);
  expect_others_served(a, ap);
  EXPECT_EQ(records_for(sa.target).size(), 1u);
  EXPECT_LE(records_for(sp.target).size(), 1u);
}

std::vector<Mode> all_modes() {
  return {
      // Response splitting: a whole second response in the same write.
      Mode{"stray_same", "GET", "/a?stray=same", {200, 502}},
      // The reported bug: an unsolicited response 50 ms later on the idle pooled connection.
      Mode{"stray_later", "GET", "/a?stray=later", {200, 502}},
      Mode{"head_with_body", "HEAD", "/a?bodiless_body=1", {200, 502}},
      Mode{"no_content_with_body", "GET", "/a?status=204&bodiless_body=1", {204, 502}},
      Mode{"not_modified_with_body", "GET", "/a?status=304&bodiless_body=1", {304, 502}},
      Mode{"body_longer_than_length", "GET", "/a?overlong=1", {200, 502}},
      Mode{"chunked_then_more", "GET", "/a?chunked=1&overlong=1", {200, 502}},
      Mode{"continue_then_bytes", "GET", "/a?interim=100&interim_body=1", {200, 502}},
      Mode{"early_hints_then_bytes", "GET", "/a?interim=103&interim_body=1", {200, 502}},
      Mode{"two_responses", "GET", "/a?twice=1", {200, 502}},
      Mode{"length_and_chunked", "GET", "/a?cl_te=1&stray=later", {200, 502}},
      Mode{"answer_before_body_keep", "POST", "/a?early=keep&status=413", {413, 502}, false, 256 * 1024},
      Mode{"answer_before_body_close", "POST", "/a?early=close&status=413", {413, 502}, false, 256 * 1024},
      Mode{"reset_mid_body", "GET", "/a?reset=mid_body&bytes=64k", {502}, false, 0, true},
      Mode{"silent_close_after_keep_alive", "GET", "/a?stale=close", {200}, false},
      Mode{"few_early_hints", "GET", "/a?interim=103&interims=3", {200}, false},
      // A long run of 1xx: phigate cuts it (its bound is far below this).
      Mode{"many_early_hints", "GET", "/a?interim=103&interims=100000", {502}, false}};
}

// stray=later with a request already waiting is left out: phigate forwards the pipelined request at
// once, the unsolicited response then arrives where that request's answer belongs, and no HTTP/1.1
// intermediary can tell the two apart (the backend itself mislabels its answer). The stray that
// arrives while the connection is idle is the one phigate must catch, and the other test covers it.
std::vector<Mode> pipelined_modes() {
  auto modes = all_modes();
  std::erase_if(modes, [](const Mode& m) {
    return m.target.find("stray=later") != std::string::npos && m.target.find("cl_te") == std::string::npos;
  });
  return modes;
}

std::string mode_name(const ::testing::TestParamInfo<Mode>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Modes, UpstreamDesyncModeTest, ::testing::ValuesIn(all_modes()), mode_name);
INSTANTIATE_TEST_SUITE_P(Modes, UpstreamDesyncPipelinedTest, ::testing::ValuesIn(pipelined_modes()),
                         mode_name);

// RFC 9110 §9.2.2: only idempotent requests may be retried automatically. The backend reads and
// records the request on the pooled connection, then closes without answering (stale=next): phigate
// cannot tell this from a stale connection, and the request has reached the backend.
class UpstreamStaleTest : public UpstreamDesyncTest {
 protected:
  void expect_not_resent(const std::string& method) {
    auto a = connect();
    const Sent sa = next("GET", "/a?stale=next");
    expect_own(exchange(a, sa), sa, {200});
    auto b = connect();
    const Sent sb = next(method, "/b");
    const Answer ab = exchange(b, sb);
    expect_own(ab, sb, {502});
    const auto recs = records_for(sb.target);
    ASSERT_EQ(recs.size(), 1u) << "a " << method << " sent twice to the backend";
    EXPECT_NE(recs[0].find("\"unanswered\":true"), std::string::npos) << recs[0];
    expect_others_served(b, ab);
  }
};

TEST_F(UpstreamStaleTest, Desync_PostOnStalePooledConnection_NotResent) {
  expect_not_resent("POST");
}

TEST_F(UpstreamStaleTest, Desync_PatchOnStalePooledConnection_NotResent) {
  expect_not_resent("PATCH");
}

// DELETE is idempotent (RFC 9110 §9.2.2): a second copy has the effect of the first, so like a
// GET it is sent once more on a new connection (nginx does the same).
TEST_F(UpstreamStaleTest, Desync_DeleteOnStalePooledConnection_RetriedOnceAndSucceeds) {
  auto a = connect();
  const Sent sa = next("GET", "/a?stale=next");
  expect_own(exchange(a, sa), sa, {200});
  auto b = connect();
  const Sent sb = next("DELETE", "/b");
  expect_own(exchange(b, sb), sb, {200});
  const auto recs = records_for(sb.target);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_NE(recs[0].find("\"unanswered\":true"), std::string::npos) << recs[0];
  EXPECT_EQ(recs[1].find("\"unanswered\""), std::string::npos) << recs[1];
}

TEST_F(UpstreamStaleTest, Desync_GetOnStalePooledConnection_RetriedOnceAndSucceeds) {
  auto a = connect();
  const Sent sa = next("GET", "/a?stale=next");
  expect_own(exchange(a, sa), sa, {200});
  auto b = connect();
  const Sent sb = next("GET", "/b");
  expect_own(exchange(b, sb), sb, {200});
  const auto recs = records_for(sb.target);
  ASSERT_EQ(recs.size(), 2u) << "the GET should go once on the stale connection and once on a new one";
  EXPECT_NE(recs[0].find("\"unanswered\":true"), std::string::npos) << recs[0];
  EXPECT_EQ(recs[1].find("\"unanswered\""), std::string::npos) << recs[1];
  EXPECT_NE(json_field(recs[0], "conn"), json_field(recs[1], "conn"));
}

// The backend closed the idle pooled connection without saying so: a POST on it reaches the backend at
// most once, and is answered when it did.
TEST_F(UpstreamStaleTest, Desync_PostAfterSilentClose_AtMostOnce) {
  auto a = connect();
  const Sent sa = next("GET", "/a?stale=close");
  expect_own(exchange(a, sa), sa, {200});
  auto b = connect();
  const Sent sb = next("POST", "/b");
  const Answer ab = exchange(b, sb);
  expect_own(ab, sb, {200, 502});
  const auto recs = records_for(sb.target);
  ASSERT_LE(recs.size(), 1u);
  if (ab.final && ab.final->status == 200) {
    EXPECT_EQ(recs.size(), 1u);
  }
  expect_others_served(b, ab);
}

// RFC 9110 §15.2 allows any number of 1xx before the final response. A backend that never stops must
// cost phigate neither unbounded memory nor the client an endless wait: it is cut with a 502.
TEST_F(UpstreamDesyncTest, Desync_EndlessInterimResponses_CutWith502WithoutMemoryGrowth) {
  warm_pool();
  const long before = rss_kib(pg_->process.pid());
  ASSERT_GT(before, 0);
  auto a = connect();
  const Sent sa = next("GET", "/a?interim=103&interims=endless");
  const Answer aa = exchange(a, sa, "", 15s);
  const long after = rss_kib(pg_->process.pid());
  expect_own(aa, sa, {502});
  EXPECT_LE(aa.interims, kMaxInterimsSeen);
  // Generous: allocator slack and TLS buffers, never the megabytes an unbounded 1xx buffer would take.
  EXPECT_LT(after - before, 32 * 1024) << "RSS " << before << " KiB -> " << after << " KiB";
  expect_others_served(a, aa);
}

// Mixed traffic: four clients on their own connections, each a run of ordinary GETs with a misbehaving
// request every third one, all through one worker's pool at once. Whatever the interleaving, every
// ordinary GET gets its own 200 and nobody sees the marker. Left out: stray=later, whose stray lands on
// whichever request goes out in its 50 ms window (indistinguishable from an answer, see above), and the
// stale modes, after which an ordinary GET may, by interleaving, meet a second stale connection on its
// one retry.
TEST_F(UpstreamDesyncTest, Desync_MixedTrafficFromFourClients_NoneGetsAnothersBytes) {
  std::vector<Mode> bad;
  for (const Mode& m : all_modes()) {
    if (m.target.find("stray=later") == std::string::npos && m.target.find("stale=") == std::string::npos) {
      bad.push_back(m);
    }
  }
  constexpr int kClients = 4;
  constexpr int kRequestsPerClient = 24;
  auto run_client = [&](int t) {
    auto c = connect();
    for (int i = 0; i < kRequestsPerClient; ++i) {
      // phigate closes a client connection after some failures (a truncated answer): open another.
      if (c.closed()) c = connect();
      if (i % 3 == 2) {
        const Mode& m = bad[static_cast<std::size_t>(t * kRequestsPerClient + i) % bad.size()];
        const Sent s = next(m.method, m.target);
        const Answer a = exchange(c, s, pattern_bytes(m.body_bytes));
        if (m.may_truncate && !a.final) {
          EXPECT_FALSE(a.marker_seen) << s.target;
          c = connect();
        } else {
          expect_own(a, s, m.allowed);
          if (!a.final || a.final->header("Connection") == "close") c = connect();
        }
      } else {
        const Sent s = next("GET", "/mixed?bytes=" + std::to_string(1 + i * 97));
        const Answer a = exchange(c, s);
        expect_own(a, s, {200});
        if (a.final) {
          EXPECT_EQ(a.final->body, pattern_bytes(static_cast<std::size_t>(1 + i * 97)));
        } else {
          c = connect();
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      try {
        run_client(t);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "client " << t << ": " << e.what();  // connect() failed: phigate stopped serving
      }
    });
  }
  for (auto& th : threads) th.join();
  auto c = connect();
  const Sent s = next("GET", "/after");
  expect_own(exchange(c, s), s, {200});
}

// The backend answers from the head (early=keep) and then waits for the rest of the body; the client
// sends a part and resets. The upstream connection now owes the backend body bytes: pooled, the next
// client's request would be swallowed as the rest of that body and the backend's next answer would be
// out of step. phigate must close it. (B goes after A's reset has reached phigate in practice; if it
// ever raced ahead it would take a fresh connection, so the test can miss but never fail wrongly.)
TEST_F(UpstreamDesyncTest, Desync_ClientResetMidBodyAfterEarlyAnswer_ConnectionNotReused) {
  warm_pool();
  {
    auto a = connect();
    const Sent sa = next("POST", "/a?early=keep&status=413");
    ASSERT_TRUE(a.write("POST " + sa.target + " HTTP/1.1\r\nHost: app.example\r\nX-Request-Id: " + sa.id +
                        "\r\nContent-Length: 100000\r\n\r\n" + pattern_bytes(1000)));
    // The backend has the request (and has answered it) once its record is there.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (records_for(sa.target).empty()) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the POST never reached the backend";
      std::this_thread::sleep_for(5ms);  // poll interval (tests/support/README.md)
    }
    a.reset();
  }
  for (int i = 0; i < 3; ++i) {
    auto c = connect();
    const Sent s = next("GET", "/after");
    expect_own(exchange(c, s, "", 8s), s, {200});
  }
}

}  // namespace
}  // namespace phigate::test
