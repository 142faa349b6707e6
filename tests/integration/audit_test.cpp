// The encrypted audit log end to end: real traffic of every outcome through phigate, then
// `phigate audit verify` and `phigate audit decrypt`; SIGKILL under load; a disk that refuses
// writes (RLIMIT_FSIZE set on the running process with prlimit); key rotation on reload.
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <thread>
#include <unordered_set>

#include "audit_fixture.hpp"
#include "support/plain_client.hpp"

namespace phigate::test {
namespace {

namespace fs = std::filesystem;

TEST_F(AuditTest, EveryOutcomeLeavesARecordWithItsFields) {
  auto up = start_upstream();
  auto pg = start_phigate(config(routes(up), audit_yaml() + "access: { deny: [\"127.0.0.2\"] }\n"));
  auto code = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"-o", "/dev/null", "-w", "%{http_code}"});
    return curl(pg, args).out;
  };
  EXPECT_EQ(code({"-A", "audit-test/1", "-H", "X-Secret: never-logged", "--data-binary", "hello",
                  https_url(pg, "/ok?patient=123")}),
            "200");
  EXPECT_EQ(code({https_url(pg, "/x", "other.example")}), "404");
  EXPECT_EQ(code({"--interface", "127.0.0.2", https_url(pg, "/denied")}), "403");
  EXPECT_EQ(code({https_url(pg, "/down")}), "502");
  EXPECT_EQ(code({"http://127.0.0.1:" + std::to_string(pg.http) + "/plain", "-H", "Host: app.example"}),
            "308");
  {
    auto c = TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example"});
    ASSERT_TRUE(c) << c.error;
    ASSERT_TRUE(
        c->write("GET /smuggle HTTP/1.1\r\nHost: app.example\r\nContent-Length: 1\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n"));
    auto r = c->read_http_response(5s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
  }
  EXPECT_FALSE(TlsClient::connect("127.0.0.1", pg.https,
                                  {.sni = "app.example",
                                   .min_version = TLS1_1_VERSION,
                                   .max_version = TLS1_1_VERSION,
                                   .cipher_list = "DEFAULT@SECLEVEL=0"}));
  EXPECT_EQ(pg.process.terminate(), 0);  // SIGTERM flushes and seals

  const auto verify = audit_cmd("verify");
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("OK"), std::string::npos) << verify.out;
  const auto recs = records();
  ASSERT_EQ(recs.size(), 7u) << verify.out;
  for (const auto& r : recs) {
    EXPECT_TRUE(has(r, "\"schema\":\"phigate.audit/1\"")) << r;
    EXPECT_TRUE(has(r, "\"@timestamp\":\"20")) << r;
    EXPECT_FALSE(has(r, "never-logged")) << "a header value leaked: " << r;
    EXPECT_FALSE(has(r, "patient=123")) << "the query leaked: " << r;
  }
  const auto ok = find(recs, "\"path\":\"/ok\"");
  EXPECT_TRUE(has(ok, "\"status_code\":200")) << ok;
  EXPECT_TRUE(has(ok, "\"method\":\"POST\"")) << ok;
  EXPECT_TRUE(has(ok, "\"domain\":\"app.example\"")) << ok;
  EXPECT_TRUE(has(ok, "\"query\":\"[redacted]\"")) << ok;
  EXPECT_TRUE(has(ok, "\"request\":{\"method\":\"POST\",\"bytes\":5}")) << ok;
  EXPECT_TRUE(has(ok, "\"original\":\"audit-test/1\"")) << ok;
  EXPECT_TRUE(has(ok, "\"decision\":\"allowed\"")) << ok;
  EXPECT_TRUE(has(ok, "\"outcome\":\"success\"")) << ok;
  EXPECT_TRUE(has(ok, "\"address\":\"" + up.address() + "\"")) << ok;
  EXPECT_TRUE(has(ok, "\"server_name\":\"app.example\"")) << ok;
  EXPECT_TRUE(has(ok, "\"client\":{\"ip\":\"127.0.0.1\"}")) << ok;
  // The request id the backend saw is the one in the record.
  ASSERT_EQ(up.records().size(), 1u);
  EXPECT_TRUE(has(ok, "\"request_id\":\"" + record_header(up.records()[0], "x-request-id") + "\"")) << ok;

  EXPECT_TRUE(has(find(recs, "\"path\":\"/x\""), "\"status_code\":404"));
  const auto denied = find(recs, "\"path\":\"/denied\"");
  EXPECT_TRUE(has(denied, "\"status_code\":403")) << denied;
  EXPECT_TRUE(has(denied, "\"decision\":\"denied\"")) << denied;
  EXPECT_TRUE(has(denied, "\"ip\":\"127.0.0.2\"")) << denied;
  EXPECT_TRUE(has(denied, "\"reason\":\"denied\"")) << denied;
  const auto down = find(recs, "\"path\":\"/down\"");
  EXPECT_TRUE(has(down, "\"status_code\":502")) << down;
  EXPECT_TRUE(has(down, "\"reason\":\"connect_refused\"")) << down;
  const auto plain = find(recs, "\"path\":\"/plain\"");
  EXPECT_TRUE(has(plain, "\"status_code\":308")) << plain;
  EXPECT_TRUE(has(plain, "\"decision\":\"redirected\"")) << plain;
  EXPECT_FALSE(has(plain, "\"tls\":")) << plain;
  const auto smuggle = find(recs, "\"path\":\"/smuggle\"");
  EXPECT_TRUE(has(smuggle, "\"status_code\":400")) << smuggle;
  EXPECT_TRUE(has(find(recs, "\"action\":\"tls-handshake\""), "\"reason\":\"tls_handshake\""));
}

TEST_F(AuditTest, RetriedRequestRecordsBothAttemptsInItsOneRecord) {
  // The backend reads the next request on the keep-alive connection and closes without answering
  // (stale=next): phigate cannot tell that from a stale pooled connection and sends the GET again.
  // The request reached the backend twice; its one audit record must say so.
  auto up = start_upstream();
  auto pg = start_phigate(config(routes(up), audit_yaml()));
  auto r = curl(pg, {"-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} ",
                     https_url(pg, "/first?stale=next"), https_url(pg, "/second")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200 200 ");
  int second_at_backend = 0;
  for (const auto& line : up.records()) second_at_backend += json_field(line, "target") == "/second" ? 1 : 0;
  EXPECT_EQ(second_at_backend, 2);
  ASSERT_TRUE(pg.process.send_signal(SIGTERM));
  ASSERT_EQ(pg.process.wait_exit(20s), 0);
  const auto recs = records();
  const auto first = find(recs, "\"path\":\"/first\"");
  const auto second = find(recs, "\"path\":\"/second\"");
  EXPECT_TRUE(has(first, "\"attempts\":1")) << first;
  EXPECT_TRUE(has(second, "\"attempts\":2")) << second;
}

// audit.headers may list forwarding fields: the record holds phigate's values (what the backend
// got), never a client's forgery, over HTTP/1.1 and HTTP/2 (those heads then carry them as fields,
// not as forwarding_lines, which the record cannot read: Snapshot::audit_reads_forwarding).
TEST_F(AuditTest, ListedForwardingFieldsRecordWhatTheBackendGot) {
  auto up = start_upstream();
  auto pg = start_phigate(
      config(routes(up), audit_yaml("k1", ", headers: [x-forwarded-for, x-request-id, x-trace]")));
  for (const std::string proto : {"--http1.1", "--http2"}) {
    const auto r =
        curl(pg, {proto, "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Forwarded-For: 6.6.6.6", "-H",
                  "X-Request-ID: forged", "-H", "X-Trace: t" + proto, https_url(pg, "/fwd" + proto)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "200");
  }
  const auto reqs = proxied_requests(up);
  ASSERT_EQ(reqs.size(), 2u);
  const auto recs = stop_and_read_audit(pg);
  for (std::size_t i = 0; i < 2; ++i) {
    const std::string proto = i == 0 ? "--http1.1" : "--http2";
    const auto& got = reqs[i];
    EXPECT_EQ(json_field(got, "target"), "/fwd" + proto);
    EXPECT_EQ(record_header_count(got, "X-Forwarded-For"), 1) << got;
    EXPECT_EQ(record_header_count(got, "X-Request-ID"), 1) << got;
    const auto id = record_header(got, "X-Request-ID");
    EXPECT_NE(id, "forged");
    const auto rec = find(recs, "\"path\":\"/fwd" + proto + "\"");
    EXPECT_TRUE(has(rec, "\"x-forwarded-for\":\"127.0.0.1\"")) << rec;
    EXPECT_TRUE(has(rec, "\"x-request-id\":\"" + id + "\"")) << rec;
    EXPECT_TRUE(has(rec, "\"x-trace\":\"t" + proto + "\"")) << rec;
    EXPECT_FALSE(has(rec, "6.6.6.6")) << rec;
  }
}

TEST_F(AuditTest, ARequestWhoseRecordIsTooLongForTheWriterStillLeavesItsOneRecord) {
  // A 64k queue takes records up to 16k; a recorded header of 30k makes the full record longer.
  // The request is answered (its record is written after the response), so it must not be lost:
  // a stand-in record says so, with the full record's length, SHA-256 and first bytes.
  auto up = start_upstream();
  auto pg = start_phigate(config(routes(up), audit_yaml("k1", ", queue_bytes: 64k, headers: [x-trace]")));
  const std::string big(30000, 'a');
  auto r = curl(
      pg, {"-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Trace: " + big, https_url(pg, "/big-record")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  r = curl(pg,
           {"-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Trace: small", https_url(pg, "/small-record")});
  EXPECT_EQ(r.out, "200");
  EXPECT_EQ(proxied_requests(up).size(), 2u);
  const auto recs = stop_and_read_audit(pg);
  std::size_t stand_ins = 0, requests = 0;
  for (const auto& rec : recs) {
    stand_ins += has(rec, "\"action\":\"record-too-large\"") ? 1 : 0;
    requests += has(rec, "\"action\":\"http-request\"") ? 1 : 0;
  }
  EXPECT_EQ(stand_ins, 1u);
  EXPECT_EQ(requests, 1u);  // the small one, in full
  const auto stand_in = find(recs, "record-too-large");
  EXPECT_TRUE(has(stand_in, "\"@timestamp\":\"20")) << stand_in;
  EXPECT_TRUE(has(stand_in, "\"sha256\":\"")) << stand_in;
  EXPECT_TRUE(has(stand_in, "\"head\":\"{\\\"@timestamp")) << stand_in.substr(0, 400);
  EXPECT_LT(stand_in.size(), 16384u);
}

TEST_F(AuditTest, SigkillUnderLoadLosesAtMostTheLastFlush_AndTheChainContinues) {
  auto up = start_upstream();
  auto pg = start_phigate(config(routes(up), audit_yaml("k1", ", flush_interval: 100ms")));
  auto c = TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example"});
  ASSERT_TRUE(c) << c.error;
  // Served requests (200) must all be in the log; when the writer falls behind (a slow fsync on a
  // busy disk) phigate fails closed, and those 503s are the only other answer allowed.
  std::vector<std::pair<int, std::chrono::steady_clock::time_point>> answered;
  int refused = 0;
  const auto until = std::chrono::steady_clock::now() + 2500ms;
  for (int i = 0; i < 100000 && std::chrono::steady_clock::now() < until; ++i) {
    ASSERT_TRUE(c->write("GET /n/" + std::to_string(i) + " HTTP/1.1\r\nHost: app.example\r\n\r\n"));
    auto r = c->read_http_response(5s);
    ASSERT_TRUE(r) << c->error();
    ASSERT_TRUE(r->status == 200 || r->status == 503) << r->status;
    if (r->status == 200) answered.emplace_back(i, std::chrono::steady_clock::now());
    refused += r->status == 503;
  }
  ASSERT_TRUE(pg.process.send_signal(SIGKILL));
  const auto killed = std::chrono::steady_clock::now();
  pg.process.wait_exit(5s);

  const auto v = audit_cmd("verify");
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;  // a crashed final segment is a clean truncation
  std::unordered_set<std::string> logged;       // paths in the log
  for (const auto& rec : records()) {
    const auto at = rec.find("\"path\":\"/n/");
    if (at != std::string::npos) logged.insert(rec.substr(at + 8, rec.find('"', at + 8) - (at + 8)));
  }
  std::size_t required = 0, missing = 0;
  for (const auto& [i, when] : answered) {
    // Flush interval 100 ms; the rest is slack for an fsync on a busy shared CI disk.
    if (killed - when < 1s) continue;
    ++required;
    if (logged.count("/n/" + std::to_string(i)) == 0) ++missing;
  }
  EXPECT_GT(required, 10u);
  EXPECT_EQ(missing, 0u) << "of " << required << " served responses received before the last flush ("
                         << refused << " refused with 503 while the writer caught up)";

  // Restart on the same folder: the new segment chains to the last good frame of the crashed one.
  auto again = start_phigate(config(routes(up), audit_yaml()));
  EXPECT_EQ(curl(again, {"-o", "/dev/null", "-w", "%{http_code}", https_url(again, "/after")}).out, "200");
  EXPECT_EQ(again.process.terminate(), 0);
  const auto v2 = audit_cmd("verify");
  EXPECT_EQ(v2.exit_code, 0) << v2.out << v2.err;
  EXPECT_FALSE(find(records(), "\"path\":\"/after\"").empty());
}

TEST_F(AuditTest, DiskRefusingWritesFailsClosedWith503ThenRecovers) {
  auto up = start_upstream();
  auto pg = start_phigate(config(routes(up), audit_yaml("k1", ", flush_interval: 50ms")));
  auto code = [&](const std::string& path) {
    return curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, path)}).out;
  };
  EXPECT_EQ(code("/before"), "200");
  // The kernel will refuse to grow any file of phigate's beyond the active segment's size, so
  // the next audit write fails with EFBIG, as on a full disk. RLIMIT_FSIZE also covers
  // phigate's log file: grow the segment past the log's size first, so that logging still works.
  std::string open_segment;
  for (const auto& e : fs::directory_iterator(dir_.path("audit"))) {
    if (e.path().extension() == ".open") open_segment = e.path();
  }
  ASSERT_FALSE(open_segment.empty());
  const auto log_size = [&] { return fs::file_size(pg.process.output_path()); };
  for (int i = 0; i < 200 && fs::file_size(open_segment) < 4 * log_size() + 8192; ++i) {
    EXPECT_EQ(code("/fill-" + std::to_string(i)), "200");
  }
  std::uintmax_t size = 0;  // settled: written and flushed (flush_interval 50 ms)
  for (int i = 0; i < 50 && size != fs::file_size(open_segment); ++i) {
    size = fs::file_size(open_segment);
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_GT(size, 2 * log_size());
  const auto pid = std::to_string(pg.process.pid());
  // A request admitted while the log is healthy whose response (and so its record) comes after the
  // writer failed: its record must still be kept. The upstream has it before the limit is set.
  std::string slow_code;
  std::thread slow([&] { slow_code = code("/slow?delay_ms=3000"); });
  const auto upstream_has = [&](const std::string& target) {
    for (const auto& line : up.records()) {
      if (json_field(line, "target") == target) return true;
    }
    return false;
  };
  for (int i = 0; i < 100 && !upstream_has("/slow?delay_ms=3000"); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(upstream_has("/slow?delay_ms=3000"));
  // Soft limit only: lowering the hard limit could not be undone without CAP_SYS_RESOURCE.
  auto lim = run({"prlimit", "--pid", pid, "--fsize=" + std::to_string(size) + ":"});
  ASSERT_EQ(lim.exit_code, 0) << lim.err;
  const auto mark = pg.process.output().size();
  std::string seen;
  for (int i = 0; i < 100 && seen != "503"; ++i) seen = code("/during-" + std::to_string(i));
  EXPECT_EQ(seen, "503");
  EXPECT_TRUE(pg.process.wait_for_line("failing closed", 5s, mark))
      << "since mark: " << pg.process.output().substr(mark) << "\nall: " << pg.process.output();
  slow.join();  // answered while the writer is still failed (the limit is still set)
  EXPECT_EQ(slow_code, "200");
  bool gauge_down = false;  // refreshed every second by the control thread
  for (int i = 0; i < 40 && !gauge_down; ++i) {
    gauge_down = metrics(pg).find("phigate_audit_healthy 0") != std::string::npos;
    if (!gauge_down) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(gauge_down);
  EXPECT_EQ(up.records().size() >= 1, true);

  lim = run({"prlimit", "--pid", pid, "--fsize=unlimited:"});
  ASSERT_EQ(lim.exit_code, 0) << lim.err;
  std::string back;
  for (int i = 0; i < 100 && back != "200"; ++i) back = code("/recovered");
  EXPECT_EQ(back, "200");
  EXPECT_TRUE(pg.process.wait_for_line("writer recovered", 5s, mark));
  EXPECT_EQ(pg.process.terminate(), 0);
  const auto v = audit_cmd("verify");
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  const auto recs = records();
  EXPECT_FALSE(find(recs, "\"path\":\"/before\"").empty());
  EXPECT_FALSE(find(recs, "\"path\":\"/recovered\"").empty());
  // Every request phigate let through while failing is in the log: nothing accepted was lost.
  for (const auto& line : up.records()) {
    const auto target = json_field(line, "target");
    const auto path = target.substr(0, target.find('?'));  // the record keeps no query
    EXPECT_FALSE(find(recs, "\"path\":\"" + path + "\"").empty()) << path;
  }
}

TEST_F(AuditTest, NewActiveKeyOnReloadStartsASegment_MissingKeyIsAStartupError) {
  auto up = start_upstream();
  auto pg = start_phigate(config(routes(up), audit_yaml("k1")));
  EXPECT_EQ(curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/one")}).out, "200");
  write_key("k2");
  const auto mark = pg.process.output().size();
  dir_.write("phigate.yaml", config(routes(up), audit_yaml("k2")));
  ASSERT_TRUE(pg.process.send_signal(SIGHUP));
  ASSERT_TRUE(pg.process.wait_for_line("new segment with key k2", 5s, mark)) << pg.process.output();
  EXPECT_EQ(curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/two")}).out, "200");
  EXPECT_EQ(pg.process.terminate(), 0);
  EXPECT_EQ(audit_cmd("verify").exit_code, 0);
  const auto recs = records();
  EXPECT_FALSE(find(recs, "\"path\":\"/one\"").empty());
  EXPECT_FALSE(find(recs, "\"path\":\"/two\"").empty());
  // Without k2 the second segment cannot be read: reported, not skipped.
  fs::remove(dir_.path("keys/k2.key"));
  const auto v = audit_cmd("verify");
  EXPECT_NE(v.exit_code, 0);
  EXPECT_NE((v.out + v.err).find("unknown_key"), std::string::npos) << v.out << v.err;

  // A missing active key: startup error naming the file.
  dir_.write("phigate.yaml", config(routes(up), audit_yaml("nope")));
  auto r = run({bin("phigate"), "run", "--config", dir_.path("phigate.yaml")}, {.timeout = 10s});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE((r.out + r.err).find(dir_.path("keys/nope.key")), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace phigate::test
