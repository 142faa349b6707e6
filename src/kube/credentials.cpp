#include "phigate/kube/credentials.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace phigate::kube {

namespace {

/// Files read here are small (a CA bundle, a token, a key); anything bigger is not one of them.
constexpr std::uintmax_t kMaxFile = 4u << 20;

bool read_small_file(const std::string& path, std::string& out, std::string& why) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    why = "cannot read " + path + ": " + ec.message();
    return false;
  }
  if (size > kMaxFile) {
    why = path + " is larger than 4 MiB";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = "cannot open " + path;
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

std::string trim(std::string s) {
  const auto not_space = [](char c) { return c != ' ' && c != '\t' && c != '\r' && c != '\n'; };
  while (!s.empty() && !not_space(s.back())) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && !not_space(s[i])) ++i;
  return s.substr(i);
}

/// A bearer token goes into a header: visible ASCII only (RFC 6750 §2.1 b64token is narrower
/// still), so a token file cannot smuggle CR LF and a second header into every request.
bool valid_token(const std::string& t) {
  for (const char c : t) {
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) return false;
  }
  return true;
}

bool read_token_file(const std::string& path, std::string& token, std::string& why) {
  std::string text;
  if (!read_small_file(path, text, why)) return false;
  text = trim(std::move(text));
  if (text.empty()) {
    why = "token file " + path + " is empty";
    return false;
  }
  if (!valid_token(text)) {
    why = "token file " + path + " holds characters not allowed in a bearer token";
    return false;
  }
  token = std::move(text);
  return true;
}

/// True when `pem` holds at least one certificate and nothing that fails to parse.
bool has_pem_certificate(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return false;
  int count = 0;
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509_free(x);
    ++count;
  }
  const unsigned long e = ERR_peek_last_error();
  const bool at_end = e == 0 || ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
  ERR_clear_error();
  BIO_free(bio);
  return count > 0 && at_end;
}

bool has_pem_key(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return false;
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  const bool ok = key != nullptr;
  EVP_PKEY_free(key);
  BIO_free(bio);
  ERR_clear_error();
  return ok;
}

/// Standard base64 (kubeconfig *-data fields), whitespace allowed; false when malformed.
bool base64_decode(const std::string& in, std::string& out) {
  EVP_ENCODE_CTX* ctx = EVP_ENCODE_CTX_new();
  if (ctx == nullptr) return false;
  EVP_DecodeInit(ctx);
  out.assign(in.size() / 4 * 3 + 3, '\0');
  int n = 0;
  int total = 0;
  bool ok =
      EVP_DecodeUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &n,
                       reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size())) >= 0;
  total = n;
  if (ok) {
    ok = EVP_DecodeFinal(ctx, reinterpret_cast<unsigned char*>(out.data()) + total, &n) == 1;
    total += n;
  }
  EVP_ENCODE_CTX_free(ctx);
  ERR_clear_error();
  if (!ok) return false;
  out.resize(static_cast<std::size_t>(total));
  return true;
}

bool is_ipv6_literal(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool valid_port(const std::string& p) {
  if (p.empty() || p.size() > 5) return false;
  for (const char c : p) {
    if (c < '0' || c > '9') return false;
  }
  const int v = std::stoi(p);
  return v > 0 && v <= 65535;
}

/// "https://host[:port][/]" → normalised "https://host:port" and the bare host (brackets off).
bool parse_server(const std::string& url, std::string& server, std::string& host, std::string& why) {
  constexpr std::string_view kScheme = "https://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) {
    why = "must be an https:// URL (phigate never talks to the API server in plain text)";
    return false;
  }
  std::string rest = url.substr(kScheme.size());
  const auto slash = rest.find('/');
  if (slash != std::string::npos) {
    // A path prefix (an API proxy in front of the server) would change every request's target:
    // not supported, so refused rather than dropped.
    if (rest.substr(slash) != "/") {
      why = "a path after the host is not supported";
      return false;
    }
    rest.resize(slash);
  }
  if (rest.find_first_of("?#@") != std::string::npos) {
    why = "user info, query and fragment are not allowed";
    return false;
  }
  std::string port = "443";
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string::npos) {
      why = "unterminated IPv6 literal";
      return false;
    }
    host = rest.substr(1, close - 1);
    if (!is_ipv6_literal(host)) {
      why = "not an IPv6 literal in brackets";
      return false;
    }
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') {
        why = "garbage after the IPv6 literal";
        return false;
      }
      port = rest.substr(close + 2);
    }
  } else {
    const auto colon = rest.find(':');
    host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  if (host.empty()) {
    why = "no host";
    return false;
  }
  if (!valid_port(port)) {
    why = "invalid port";
    return false;
  }
  server = "https://" + (is_ipv6_literal(host) ? "[" + host + "]" : host) + ":" + port;
  return true;
}

/// The `name`d entry of a kubeconfig list (clusters, users, contexts): its inner map (`inner`).
YAML::Node find_named(const YAML::Node& root, const char* list, const char* inner, const std::string& name) {
  const YAML::Node l = root[list];
  if (!l || !l.IsSequence()) return YAML::Node(YAML::NodeType::Undefined);
  for (const auto& e : l) {
    if (e.IsMap() && e["name"] && e["name"].IsScalar() && e["name"].Scalar() == name) return e[inner];
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

/// A scalar string field of a map, "" when absent. False (with `why`) when present but not scalar.
bool str_field(const YAML::Node& m, const char* key, std::string& out, std::string& why) {
  const YAML::Node v = m[key];
  if (!v || v.IsNull()) return true;
  if (!v.IsScalar()) {
    why = std::string(key) + " must be a string";
    return false;
  }
  out = v.Scalar();
  return true;
}

std::string resolve_path(const std::string& dir, const std::string& p) {
  if (p.empty() || p.front() == '/') return p;
  return (std::filesystem::path(dir) / p).lexically_normal().string();
}

/// `data` (base64) or the file `file`, into `out`. Both set: refused (which one would win is a guess).
bool file_or_data(const YAML::Node& m, const char* file_key, const char* data_key, const std::string& dir,
                  std::string& out, std::string& file_used, std::string& why) {
  std::string file;
  std::string data;
  if (!str_field(m, file_key, file, why) || !str_field(m, data_key, data, why)) return false;
  if (!file.empty() && !data.empty()) {
    why = std::string("both ") + file_key + " and " + data_key + " are set";
    return false;
  }
  if (!data.empty()) {
    if (!base64_decode(data, out)) {
      why = std::string(data_key) + " is not base64";
      return false;
    }
    return true;
  }
  if (!file.empty()) {
    file_used = resolve_path(dir, file);
    std::string read_why;
    if (!read_small_file(file_used, out, read_why)) {
      why = std::string(file_key) + ": " + read_why;
      return false;
    }
  }
  return true;
}

}  // namespace

Getenv process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::optional<Credentials> in_cluster(const Getenv& env, CredentialsError& err, const std::string& sa_dir) {
  const auto fail = [&err](std::string m) -> std::optional<Credentials> {
    err.message = "in-cluster credentials: " + std::move(m);
    return std::nullopt;
  };
  const auto host = env("KUBERNETES_SERVICE_HOST");
  const auto port = env("KUBERNETES_SERVICE_PORT");
  if (!host || host->empty()) {
    return fail("KUBERNETES_SERVICE_HOST is not set (not in a pod? set ingress.kubernetes.kubeconfig)");
  }
  if (!port || port->empty()) {
    return fail("KUBERNETES_SERVICE_PORT is not set (not in a pod? set ingress.kubernetes.kubeconfig)");
  }
  if (!valid_port(*port)) return fail("KUBERNETES_SERVICE_PORT '" + *port + "' is not a port");
  // An IPv6 service address goes into the URL in brackets (RFC 3986 §3.2.2).
  const std::string url_host = is_ipv6_literal(*host) ? "[" + *host + "]" : *host;
  Credentials c;
  std::string why;
  if (!parse_server("https://" + url_host + ":" + *port, c.server, c.server_name, why)) {
    return fail("KUBERNETES_SERVICE_HOST '" + *host + "': " + why);
  }
  c.token_file = sa_dir + "/token";
  if (!read_token_file(c.token_file, c.token, why)) return fail("service account token: " + why);
  const std::string ca = sa_dir + "/ca.crt";
  if (!read_small_file(ca, c.ca_pem, why)) return fail("service account CA: " + why);
  if (!has_pem_certificate(c.ca_pem))
    return fail("service account CA " + ca + " is not a PEM certificate list");
  std::string ns;
  if (!read_small_file(sa_dir + "/namespace", ns, why)) return fail("service account namespace: " + why);
  c.namespace_ = trim(std::move(ns));
  if (c.namespace_.empty()) return fail("service account namespace file " + sa_dir + "/namespace is empty");
  c.source = "in-cluster";
  return c;
}

std::optional<Credentials> from_kubeconfig(const std::string& path, const std::string& context,
                                           CredentialsError& err) {
  const auto fail = [&err, &path](std::string m) -> std::optional<Credentials> {
    err.message = "kubeconfig " + path + ": " + std::move(m);
    return std::nullopt;
  };
  std::string text;
  std::string why;
  if (!read_small_file(path, text, why)) return fail(why);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return fail(std::string("not YAML: ") + e.what());
  }
  if (!root.IsMap()) return fail("not a kubeconfig (expected a mapping)");
  const std::string dir = std::filesystem::path(path).parent_path().string();

  std::string ctx_name = context;
  if (ctx_name.empty()) {
    if (!str_field(root, "current-context", ctx_name, why)) return fail(why);
    if (ctx_name.empty()) return fail("no context given and no current-context");
  }
  const YAML::Node ctx = find_named(root, "contexts", "context", ctx_name);
  if (!ctx || !ctx.IsMap()) return fail("context '" + ctx_name + "' not found");
  std::string cluster_name;
  std::string user_name;
  Credentials c;
  const std::string where_ctx = "context '" + ctx_name + "': ";
  if (!str_field(ctx, "cluster", cluster_name, why) || !str_field(ctx, "user", user_name, why) ||
      !str_field(ctx, "namespace", c.namespace_, why)) {
    return fail(where_ctx + why);
  }
  if (c.namespace_.empty()) c.namespace_ = "default";
  if (cluster_name.empty()) return fail(where_ctx + "no cluster");

  // Cluster.
  const YAML::Node cl = find_named(root, "clusters", "cluster", cluster_name);
  const std::string where_cl = "cluster '" + cluster_name + "': ";
  if (!cl || !cl.IsMap())
    return fail("cluster '" + cluster_name + "' (of context '" + ctx_name + "') not found");
  if (const YAML::Node skip = cl["insecure-skip-tls-verify"]; skip && skip.IsScalar()) {
    bool v = false;
    if (!YAML::convert<bool>::decode(skip, v))
      return fail(where_cl + "insecure-skip-tls-verify must be a boolean");
    // phigate never talks to the API server without verifying it: the token and every Secret
    // (TLS keys) would go to whoever answers.
    if (v)
      return fail(where_cl +
                  "insecure-skip-tls-verify: true is refused (phigate always verifies the API server)");
  }
  if (cl["proxy-url"]) return fail(where_cl + "proxy-url is not supported");
  std::string server_url;
  if (!str_field(cl, "server", server_url, why)) return fail(where_cl + why);
  if (server_url.empty()) return fail(where_cl + "no server");
  std::string host;
  if (!parse_server(server_url, c.server, host, why))
    return fail(where_cl + "server '" + server_url + "': " + why);
  if (!str_field(cl, "tls-server-name", c.server_name, why)) return fail(where_cl + why);
  if (c.server_name.empty()) c.server_name = host;
  std::string ca_file;
  if (!file_or_data(cl, "certificate-authority", "certificate-authority-data", dir, c.ca_pem, ca_file, why)) {
    return fail(where_cl + why);
  }
  if (c.ca_pem.empty()) {
    return fail(where_cl +
                "no certificate-authority or certificate-authority-data (phigate verifies the API server "
                "against the cluster CA only)");
  }
  if (!has_pem_certificate(c.ca_pem)) {
    return fail(where_cl +
                (ca_file.empty() ? "certificate-authority-data" : "certificate-authority " + ca_file) +
                " is not a PEM certificate list");
  }

  // User (none: anonymous, the API server decides).
  if (!user_name.empty()) {
    const YAML::Node u = find_named(root, "users", "user", user_name);
    const std::string where_u = "user '" + user_name + "': ";
    if (!u) return fail("user '" + user_name + "' (of context '" + ctx_name + "') not found");
    if (u.IsMap()) {
      // Credential plugins run programs and impersonation changes who phigate acts as: neither is
      // supported, and silently ignoring them would connect as someone else (or anonymously).
      for (const char* refused :
           {"exec", "auth-provider", "username", "password", "as", "as-uid", "as-groups", "as-user-extra"}) {
        if (u[refused]) return fail(where_u + refused + " is not supported");
      }
      std::string token_file;
      if (!str_field(u, "token", c.token, why) || !str_field(u, "tokenFile", token_file, why)) {
        return fail(where_u + why);
      }
      if (!c.token.empty() && !valid_token(c.token)) {
        return fail(where_u + "token holds characters not allowed in a bearer token");
      }
      if (!token_file.empty()) {
        c.token_file = resolve_path(dir, token_file);
        // client-go: when both are set, the file's last good read wins over the static token.
        if (!read_token_file(c.token_file, c.token, why)) return fail(where_u + "tokenFile: " + why);
      }
      std::string cert_file;
      std::string key_file;
      if (!file_or_data(u, "client-certificate", "client-certificate-data", dir, c.client_cert_pem, cert_file,
                        why) ||
          !file_or_data(u, "client-key", "client-key-data", dir, c.client_key_pem, key_file, why)) {
        return fail(where_u + why);
      }
      if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
        return fail(where_u +
                    "a client certificate needs both client-certificate(-data) and client-key(-data)");
      }
      if (!c.client_cert_pem.empty() && !has_pem_certificate(c.client_cert_pem)) {
        return fail(where_u + "client certificate is not PEM");
      }
      if (!c.client_key_pem.empty() && !has_pem_key(c.client_key_pem)) {
        return fail(where_u + "client key is not a PEM private key");
      }
    } else if (!u.IsNull()) {
      return fail(where_u + "must be a mapping");
    }
  }
  c.source = "kubeconfig " + path + " context " + ctx_name;
  return c;
}

const std::string& TokenSource::current() {
  if (creds_.token_file.empty()) return creds_.token;
  struct stat st {};
  if (::stat(creds_.token_file.c_str(), &st) != 0) return creds_.token;  // keep the last good token
  const std::int64_t mtime_ns =
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  const std::int64_t size = static_cast<std::int64_t>(st.st_size);
  if (mtime_ns == mtime_ns_ && size == size_) return creds_.token;
  std::string token;
  std::string why;
  // A half-written or emptied file keeps the last good token; the next change is read again.
  if (read_token_file(creds_.token_file, token, why)) {
    creds_.token = std::move(token);
    mtime_ns_ = mtime_ns;
    size_ = size;
  }
  return creds_.token;
}

}  // namespace phigate::kube
