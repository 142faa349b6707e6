#include "phigate_fixture.hpp"

#include <algorithm>
#include <sstream>

#include "support/net.hpp"

namespace phigate::test {

namespace {
std::uint16_t port_after(const std::string& line, const std::string& key) {
  const auto at = line.find(key + "=");
  if (at == std::string::npos) return 0;
  const auto end = line.find(' ', at);
  const auto addr = line.substr(at + key.size() + 1,
                                end == std::string::npos ? std::string::npos : end - at - key.size() - 1);
  const auto hp = parse_host_port(addr);
  return hp ? hp->port : 0;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}
}  // namespace

std::vector<std::string> Upstream::records() const {
  std::vector<std::string> out;
  std::string text;
  try {
    text = read_file(record);
  } catch (const std::exception&) {
    return out;
  }
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

void PhigateTest::SetUp() {
  ca_ = make_ca(dir_.path(), "phigate test CA");
  app_cert_ = make_leaf(dir_.path(), ca_, "app.example", {"app.example", "*.app.example", "127.0.0.1"});
  other_cert_ = make_leaf(dir_.path(), ca_, "other.example", {"other.example"});
}

Upstream PhigateTest::start_upstream(const std::string& name) {
  const std::string record = dir_.path(name + ".jsonl");
  auto p = Process::start(
      {bin("phigate-test-upstream"), "--listen", "127.0.0.1:0", "--record", record, "--name", name});
  const auto line = p.wait_for_line("ready ", 10s);
  if (!line) throw std::runtime_error("test upstream did not start: " + p.output());
  const auto hp = parse_host_port(line->substr(line->find("ready ") + 6));
  if (!hp) throw std::runtime_error("bad ready line: " + *line);
  return Upstream{std::move(p), hp->port, record};
}

std::string PhigateTest::config(const std::string& routes, const std::string& extra) const {
  return "listeners:\n"
         "  https: [\"127.0.0.1:0\"]\n"
         "  http: [\"127.0.0.1:0\"]\n"
         "  admin: \"127.0.0.1:0\"\n"
         "workers: 2\n"
         "log: { level: debug }\n"
         "tls:\n"
         "  default_certificate: { cert: " +
         app_cert_.cert + ", key: " + app_cert_.key +
         " }\n"
         "  certificates:\n"
         "    - { cert: " +
         other_cert_.cert + ", key: " + other_cert_.key + " }\n" + extra + "routes:\n" + routes;
}

Phigate PhigateTest::start_phigate(const std::string& yaml, ProcessOptions opts) {
  const auto path = dir_.write("phigate.yaml", yaml);
  auto p = Process::start({bin("phigate"), "run", "--config", path}, std::move(opts));
  const auto line = p.wait_for_line("phigate ready", 20s);
  if (!line) throw std::runtime_error("phigate did not start: " + p.output());
  Phigate pg{std::move(p)};
  pg.https = port_after(*line, "https");
  pg.http = port_after(*line, "http");
  pg.admin = port_after(*line, "admin");
  return pg;
}

RunResult PhigateTest::curl(const Phigate& pg, std::vector<std::string> args,
                            std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {
      "curl",       "-sS",
      "--cacert",   ca_.cert,
      "--max-time", std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count())};
  for (const char* host : {"app.example", "other.example", "x.app.example"}) {
    argv.push_back("--resolve");
    argv.push_back(std::string(host) + ":" + std::to_string(pg.https) + ":127.0.0.1");
  }
  // curl offers h2 by default and phigate selects it: the suites written against HTTP/1.1 (its
  // wire format, its framing) keep speaking it unless a test names the protocol itself
  // (--http2, --http1.0, ...; h2_test.cpp re-runs them over both).
  if (std::none_of(args.begin(), args.end(),
                   [](const std::string& a) { return a.rfind("--http", 0) == 0; })) {
    argv.push_back("--http1.1");
  }
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions opts;
  opts.timeout = timeout + 5s;
  return run(argv, opts);
}

std::string json_field(const std::string& line, const std::string& key) {
  const auto k = "\"" + key + "\":";
  const auto at = line.find(k);
  if (at == std::string::npos) return {};
  auto v = at + k.size();
  if (line[v] == '"') {
    const auto end = line.find('"', v + 1);
    return line.substr(v + 1, end - v - 1);
  }
  const auto end = line.find_first_of(",}", v);
  return line.substr(v, end - v);
}

int record_header_count(const std::string& line, const std::string& name) {
  int n = 0;
  const std::string l = lower(line);
  const std::string needle = "[\"" + lower(name) + "\",\"";
  for (auto at = l.find(needle); at != std::string::npos; at = l.find(needle, at + 1)) ++n;
  return n;
}

std::string record_header(const std::string& line, const std::string& name) {
  const std::string l = lower(line);
  const std::string needle = "[\"" + lower(name) + "\",\"";
  const auto at = l.find(needle);
  if (at == std::string::npos) return {};
  const auto v = at + needle.size();
  return line.substr(v, line.find('"', v) - v);
}

}  // namespace phigate::test
