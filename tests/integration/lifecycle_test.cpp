// Process lifecycle: graceful drain, SIGHUP reload, startup errors, CLI contract, admin.
#include <csignal>
#include <fstream>
#include <future>
#include <iterator>
#include <sstream>

#include "phigate_fixture.hpp"
#include "support/net.hpp"
#include "support/plain_client.hpp"

namespace phigate::test {
namespace {

std::string route_to(const Upstream& up, const std::string& host = "app.example") {
  return "  - host: " + host + "\n    paths: [{ path: /, backends: [\"" + up.address() + "\"] }]\n";
}

TEST_F(PhigateTest, Drain_SigtermLetsInFlightRequestFinishThenExits0) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route_to(up)));
  // A request that takes 1.5 s at the upstream.
  auto inflight = std::async(std::launch::async, [&] {
    return curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/slow?delay_ms=1500")});
  });
  // Wait until the upstream has it (it records before answering), then ask phigate to stop.
  for (int i = 0; i < 1000 && up.records().empty(); ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(up.records().size(), 1u);
  ASSERT_TRUE(pg.process.send_signal(SIGTERM));
  // New connections are refused promptly while the old request is still running.
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    refused = !PlainClient::connect("127.0.0.1", pg.https, 200ms);
    if (!refused) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(refused);
  const auto r = inflight.get();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  EXPECT_EQ(pg.process.wait_exit(10s), 0) << pg.process.output();
}

TEST_F(PhigateTest, Drain_IdleKeepAliveConnectionsAreClosed) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route_to(up)));
  auto c = TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example"});
  ASSERT_TRUE(c) << c.error;
  ASSERT_TRUE(c->write("GET / HTTP/1.1\r\nHost: app.example\r\n\r\n"));
  ASSERT_TRUE(c->read_http_response(5s));
  ASSERT_TRUE(pg.process.send_signal(SIGTERM));
  // The idle connection is closed without waiting for the drain deadline (30 s).
  EXPECT_EQ(pg.process.wait_exit(5s), 0) << pg.process.output();
  c->read_all(2s);
  EXPECT_TRUE(c->closed());
}

TEST_F(PhigateTest, Reload_SighupSwitchesRoutes_BadFileKeepsServing) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(config(route_to(a)));
  auto hit = [&] { return curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/")}); };
  ASSERT_EQ(hit().out, "200");
  EXPECT_EQ(a.records().size(), 1u);

  // Same listeners (port 0 is re-read as "unchanged"), new backend.
  dir_.write("phigate.yaml", config(route_to(b)));
  auto mark = pg.process.output().size();
  ASSERT_TRUE(pg.process.send_signal(SIGHUP));
  ASSERT_TRUE(pg.process.wait_for_line("generation 2", 10s, mark)) << pg.process.output();
  ASSERT_EQ(hit().out, "200");
  EXPECT_EQ(b.records().size(), 1u);

  // A broken file: the error is reported and generation 2 keeps serving.
  dir_.write("phigate.yaml", "routes: [ this is not yaml");
  mark = pg.process.output().size();
  ASSERT_TRUE(pg.process.send_signal(SIGHUP));
  ASSERT_TRUE(pg.process.wait_for_line("reload failed", 10s, mark)) << pg.process.output();
  ASSERT_EQ(hit().out, "200");
  EXPECT_EQ(b.records().size(), 2u);
}

TEST_F(PhigateTest, Admin_HealthReadyAndMetrics) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route_to(up)));
  ASSERT_TRUE(wait_http_status("127.0.0.1", pg.admin, "/readyz", 5s, 200));
  ASSERT_EQ(curl(pg, {"-o", "/dev/null", https_url(pg, "/")}).exit_code, 0);
  auto m = run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(pg.admin) + "/metrics"});
  ASSERT_EQ(m.exit_code, 0);
  EXPECT_NE(m.out.find("phigate_responses_total{class=\"2xx\"} 1"), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("phigate_upstream_connects_total 1"), std::string::npos) << m.out;
  auto h = run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                "http://127.0.0.1:" + std::to_string(pg.admin) + "/healthz"});
  EXPECT_EQ(h.out, "200");
}

// The allocator --version names is the one the serving process runs on: tcmalloc is linked in by
// interposition, so a link that dropped it (--as-needed) would leave glibc's malloc in place.
TEST_F(PhigateTest, Startup_ServesOnTheAllocatorItNames) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route_to(up)));
  ASSERT_EQ(curl(pg, {"-o", "/dev/null", https_url(pg, "/")}).exit_code, 0);
  std::ifstream maps("/proc/" + std::to_string(pg.process.pid()) + "/maps");
  ASSERT_TRUE(maps.good());
  const std::string text((std::istreambuf_iterator<char>(maps)), std::istreambuf_iterator<char>());
  const bool tcmalloc = text.find("libtcmalloc_minimal.so") != std::string::npos;
  EXPECT_EQ(tcmalloc, std::string(PHIGATE_ALLOCATOR) == "tcmalloc") << PHIGATE_ALLOCATOR;
}

namespace {

/// Bytes of PID's mappings advised MADV_HUGEPAGE (the `hg` VmFlag in /proc/PID/smaps).
std::size_t huge_advised_bytes(int pid) {
  std::ifstream smaps("/proc/" + std::to_string(pid) + "/smaps");
  EXPECT_TRUE(smaps.good());
  std::size_t size_kib = 0;
  std::size_t total = 0;
  for (std::string line; std::getline(smaps, line);) {
    if (line.rfind("Size:", 0) == 0) {
      size_kib = std::stoul(line.substr(5));
    } else if (line.rfind("VmFlags:", 0) == 0) {
      std::istringstream flags(line.substr(8));
      for (std::string f; flags >> f;) {
        if (f == "hg") total += size_kib * 1024;
      }
    }
  }
  return total;
}

}  // namespace

// tcmalloc builds put the heap on transparent huge pages (src/cli/huge_pages.cpp): the serving
// process's heap mappings are advised MADV_HUGEPAGE, in 2 MiB chunks; PHIGATE_HUGE_PAGES=off keeps
// plain pages, and glibc builds (the sanitizers) never advise.
TEST_F(PhigateTest, Startup_HeapIsAdvisedHugePagesUnlessTurnedOff) {
  // A kernel built without THP refuses the advice (EINVAL): nothing to see there.
  if (!std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good())
    GTEST_SKIP() << "no THP in this kernel";
  auto up = start_upstream();
  auto on = start_phigate(config(route_to(up)), {.env = {{"PHIGATE_HUGE_PAGES", "on"}}});
  auto off = start_phigate(config(route_to(up)), {.env = {{"PHIGATE_HUGE_PAGES", "off"}}});
  for (auto* pg : {&on, &off}) ASSERT_EQ(curl(*pg, {"-o", "/dev/null", https_url(*pg, "/")}).exit_code, 0);
  const bool tcmalloc = std::string(PHIGATE_ALLOCATOR) == "tcmalloc";
  const auto advised = huge_advised_bytes(on.process.pid());
  EXPECT_EQ(advised >= (std::size_t{2} << 20), tcmalloc)
      << advised << " bytes advised, " << PHIGATE_ALLOCATOR;
  EXPECT_EQ(huge_advised_bytes(off.process.pid()), 0u);
}

// A value that is neither on nor off is refused before anything starts (it could be a typo of
// either): exit 2, naming the variable.
TEST_F(PhigateTest, Startup_HugePagesSwitchWithAnUnknownValueIsRefused) {
  const auto yaml =
      dir_.write("phigate.yaml", config("  - paths: [{ path: /, backends: [\"127.0.0.1:9\"] }]\n"));
  auto p = Process::start({bin("phigate"), "run", "--config", yaml}, {.env = {{"PHIGATE_HUGE_PAGES", "of"}}});
  EXPECT_EQ(p.wait_exit(10s), 2);
  EXPECT_NE(p.output().find("PHIGATE_HUGE_PAGES: 'of' is neither on nor off"), std::string::npos)
      << p.output();
}

TEST_F(PhigateTest, Startup_PortInUseExitsNonZeroWithOneLine) {
  auto up = start_upstream();
  // The upstream's port is taken: phigate must say so and exit.
  auto yaml = config(route_to(up));
  const std::string https0 = "https: [\"127.0.0.1:0\"]";
  yaml.replace(yaml.find(https0), https0.size(), "https: [\"" + up.address() + "\"]");
  auto p = Process::start({bin("phigate"), "run", "--config", dir_.write("phigate.yaml", yaml)});
  const auto code = p.wait_exit(10s);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 1);
  EXPECT_NE(p.output().find(up.address() + ": bind: Address already in use"), std::string::npos)
      << p.output();
}

TEST_F(PhigateTest, Startup_BadCertificateExitsNonZeroNamingTheFile) {
  const auto bogus = dir_.write("bogus.crt", "not a certificate");
  auto yaml = config("  - paths: [{ path: /, backends: [\"127.0.0.1:9\"] }]\n");
  yaml.replace(yaml.find(app_cert_.cert), app_cert_.cert.size(), bogus);
  auto p = Process::start({bin("phigate"), "run", "--config", dir_.write("phigate.yaml", yaml)});
  EXPECT_EQ(p.wait_exit(10s), 1);
  EXPECT_NE(p.output().find("cannot load certificate " + bogus), std::string::npos) << p.output();
}

TEST_F(PhigateTest, Cli_ValidatePrintsEveryErrorWithFileAndLine) {
  const auto path =
      dir_.write("bad.yaml",
                 "listeners:\n  https: [\"127.0.0.1:8443\"]\n  bogus: 1\nworkers: lots\n"
                 "routes:\n  - host: a\n    paths: [{ path: x, backends: [\"127.0.0.1:1\"] }]\n");
  auto r = run({bin("phigate"), "validate", "--config", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find(path + ":3: error: listeners.bogus: unknown key"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(path + ":4: error: workers: expected an integer"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("routes[0].paths[0].path: must start with '/'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tls.default_certificate: required"), std::string::npos) << r.out;

  auto up = start_upstream();
  auto ok = run({bin("phigate"), "validate", "--config", dir_.write("good.yaml", config(route_to(up)))});
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_NE(ok.out.find(": ok"), std::string::npos);
}

TEST_F(PhigateTest, Cli_UsageErrorsExit2WithOneLine) {
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {bin("phigate"), "run", "--bogus"},
           {bin("phigate"), "run", "--config", dir_.path("missing.yaml")},
           {bin("phigate"), "frobnicate"},
           {bin("phigate")},
       }) {
    auto r = run(argv);
    EXPECT_EQ(r.exit_code, 2) << argv.back();
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  auto v = run({bin("phigate"), "--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("phigate ", 0), 0u);
  // The allocator the build chose (src/CMakeLists.txt: tcmalloc, glibc under the sanitizers).
  EXPECT_NE(v.out.find(std::string("\nallocator: ") + PHIGATE_ALLOCATOR + "\n"), std::string::npos) << v.out;
  auto h = run({bin("phigate"), "--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("validate --config FILE"), std::string::npos);
}

}  // namespace
}  // namespace phigate::test
