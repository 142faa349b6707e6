#include "kube_fixture.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/plain_client.hpp"

#ifndef PHIGATE_KUBE_DIR
#error "PHIGATE_KUBE_DIR must be defined by the build"
#endif

namespace phigate::test {

namespace {

using namespace std::chrono_literals;

// The interpreter with python3-yaml installed; the `python3` on PATH may be a pyenv without it.
constexpr const char* kPython = "/usr/bin/python3";

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// Query-string escaping (RFC 3986 unreserved characters pass through).
std::string url_escape(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  for (auto& line : split(s, '\n')) {
    if (!line.empty()) out.push_back(std::move(line));
  }
  return out;
}

void write_file(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out.flush()) throw std::runtime_error("cannot write " + path);
}

}  // namespace

std::unique_ptr<FakeApiServer> FakeApiServer::start(TempDir& dir, FakeApiOptions options) {
  CertPaths ca = make_ca(dir.path(), "fake-apiserver-ca");
  CertPaths client_ca = make_ca(dir.path(), "fake-apiserver-client-ca");
  CertPaths leaf = make_leaf(dir.path(), ca, "kube-apiserver", {"127.0.0.1", "localhost", "kubernetes"});

  std::string config = "{\"identities\":[";
  for (std::size_t i = 0; i < options.identities.size(); ++i) {
    const auto& id = options.identities[i];
    if (i) config += ",";
    config += "{\"name\":" + json_string(id.name) + ",\"token\":" + json_string(id.token) + ",\"rules\":[";
    for (std::size_t j = 0; j < id.rules.size(); ++j) {
      if (j) config += ",";
      config += json_string(id.rules[j]);
    }
    config += "]}";
  }
  config += "],\"bookmarkIntervalMs\":" + std::to_string(options.bookmark_interval_ms) +
            ",\"maxWatchSeconds\":" + std::to_string(options.max_watch_seconds) +
            ",\"maxHistory\":" + std::to_string(options.max_history) + "}";
  std::string config_path = dir.write("fake-apiserver/config.json", config);

  std::unique_ptr<FakeApiServer> server(new FakeApiServer(Process::start(
      {kPython, std::string(PHIGATE_KUBE_DIR) + "/fake_apiserver.py", "--dir", dir.path("fake-apiserver"),
       "--cert", leaf.cert, "--key", leaf.key, "--client-ca", client_ca.cert, "--config", config_path})));
  server->dir_ = dir.path();
  server->options_ = std::move(options);
  server->ca_ = ca;
  server->client_ca_ = client_ca;
  auto line = server->process_.wait_for_line("listening ", 20s);
  if (!line) {
    throw std::runtime_error("fake_apiserver.py did not start: " + server->process_.output());
  }
  auto fields = split(*line, ' ');
  if (fields.size() < 3) throw std::runtime_error("fake_apiserver.py: unexpected first line: " + *line);
  server->port_ = static_cast<std::uint16_t>(std::stoi(fields[1]));
  server->control_port_ = static_cast<std::uint16_t>(std::stoi(fields[2]));
  server->url_ = "https://127.0.0.1:" + std::to_string(server->port_);
  if (!wait_http_status("127.0.0.1", server->control_port_, "/watches", 10s)) {
    throw std::runtime_error("fake_apiserver.py control port does not answer");
  }
  return server;
}

FakeApiServer::~FakeApiServer() {
  if (process_.pid() > 0) process_.terminate(std::chrono::milliseconds(2000));
}

const FakeApiOptions::Identity* FakeApiServer::identity(const std::string& name) const {
  for (const auto& id : options_.identities) {
    if (id.name == name) return &id;
  }
  return nullptr;
}

std::string FakeApiServer::kubeconfig(const std::string& name) {
  const auto* id = identity(name);
  std::string user;
  if (id != nullptr && !id->token.empty()) {
    user = "    token: " + json_string(id->token) + "\n";
  } else {
    // No token (or an identity the server does not know): a client certificate with CN = name,
    // signed by the client CA the server trusts.
    CertPaths cert = make_leaf(dir_, client_ca_, name, {}, KeyType::EcdsaP256, /*client=*/true);
    user = "    client-certificate: " + json_string(cert.cert) +
           "\n    client-key: " + json_string(cert.key) + "\n";
  }
  std::string text =
      "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: " + url_ +
      "\n    certificate-authority: " + json_string(ca_.cert) + "\nusers:\n- name: " + json_string(name) +
      "\n  user:\n" + user +
      "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: " + json_string(name) +
      "\n    namespace: default\ncurrent-context: fake\n";
  std::string path = dir_ + "/kubeconfig-" + name + "-" + std::to_string(++files_);
  write_file(path, text);
  return path;
}

std::string FakeApiServer::service_account_dir(const std::string& name, const std::string& ns) {
  const auto* id = identity(name);
  if (id == nullptr || id->token.empty()) {
    throw std::invalid_argument("service_account_dir: identity " + name + " has no token");
  }
  std::string folder = dir_ + "/serviceaccount-" + name + "-" + std::to_string(++files_);
  write_file(folder + "/token", id->token);
  write_file(folder + "/ca.crt", read_file(ca_.cert));
  write_file(folder + "/namespace", ns);
  return folder;
}

void FakeApiServer::set_token(const std::string& name, const std::string& token) {
  control("POST", "/token?format=text&identity=" + url_escape(name) + "&token=" + url_escape(token));
  for (auto& id : options_.identities) {
    if (id.name == name) id.token = token;
  }
}

std::string FakeApiServer::apply(const std::string& objects) {
  return control("POST", "/apply?format=text", objects);
}

void FakeApiServer::remove(const std::string& kind, const std::string& ns, const std::string& name) {
  control("POST", "/delete?format=text&kind=" + url_escape(kind) + "&ns=" + url_escape(ns) +
                      "&name=" + url_escape(name));
}

void FakeApiServer::storm(const std::string& ns, const std::string& name, int count) {
  control("POST", "/storm?format=text&ns=" + url_escape(ns) + "&name=" + url_escape(name) +
                      "&count=" + std::to_string(count));
}

void FakeApiServer::compact() {
  control("POST", "/compact?format=text");
}

void FakeApiServer::cut_watches() {
  control("POST", "/cut?format=text");
}

void FakeApiServer::set_slow(int ms) {
  control("POST", "/slow?format=text&ms=" + std::to_string(ms));
}

std::vector<std::string> FakeApiServer::objects(const std::string& kind, const std::string& ns) {
  return lines(control("GET", "/objects?format=lines&kind=" + url_escape(kind) + "&ns=" + url_escape(ns)));
}

std::vector<ApiRequest> FakeApiServer::requests() {
  std::vector<ApiRequest> out;
  for (const auto& line : lines(control("GET", "/requests?format=tsv"))) {
    auto f = split(line, '\t');
    if (f.size() != 9) throw std::runtime_error("fake_apiserver.py: bad /requests line: " + line);
    ApiRequest r;
    r.user = f[0];
    r.verb = f[1];
    r.group = f[2];
    r.resource = f[3];
    r.ns = f[4];
    r.name = f[5];
    r.method = f[6];
    r.path = f[7];
    r.status = std::stoi(f[8]);
    out.push_back(std::move(r));
  }
  return out;
}

void FakeApiServer::misbehave(const std::string& mode, int count, std::size_t bytes) {
  control("POST", "/misbehave?format=text&mode=" + url_escape(mode) + "&count=" + std::to_string(count) +
                      "&bytes=" + std::to_string(bytes));
}

int FakeApiServer::open_watches() {
  return std::stoi(control("GET", "/watches?format=text"));
}

std::string FakeApiServer::control(const std::string& method, const std::string& path,
                                   const std::string& body) {
  auto conn = PlainClient::connect("127.0.0.1", control_port_, 5s);
  if (!conn) throw std::runtime_error("fake_apiserver.py control port: " + conn.error);
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                        "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  if (!conn->write(request)) throw std::runtime_error("fake_apiserver.py control port: " + conn->error());
  // /storm with many events and /cut (waits for watchers to hang up) may take a while.
  auto response = conn->read_http_response(60s);
  if (!response) throw std::runtime_error("fake_apiserver.py control port: " + conn->error());
  if (response->status != 200) {
    throw std::runtime_error("fake_apiserver.py control " + method + " " + path + ": " +
                             std::to_string(response->status) + " " + response->body);
  }
  return response->body;
}

}  // namespace phigate::test
