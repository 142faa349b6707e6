// Credentials: kubeconfig variants and every refusal, in-cluster with a fake environment, and the
// token file re-read when it changes. Files only, no network.
#include "phigate/kube/credentials.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

namespace phigate::kube {
namespace {

namespace fs = std::filesystem;

/// A self-signed certificate and its key (PEM), made in memory: the loader only checks they parse.
struct Pem {
  std::string cert;
  std::string key;
};

Pem make_self_signed() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("test-ca"), -1,
                             -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, key, EVP_sha256());
  Pem out;
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  out.cert.assign(data, static_cast<std::size_t>(n));
  BIO_free(b);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  n = BIO_get_mem_data(b, &data);
  out.key.assign(data, static_cast<std::size_t>(n));
  BIO_free(b);
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

const Pem& pem() {
  static const Pem p = make_self_signed();
  return p;
}

std::string base64(const std::string& s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "phigate-kube-cred-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::string& content) {
    const fs::path p = fs::path(dir_) / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
    return p.string();
  }
  /// A kubeconfig with one context "main" → cluster "c", user "u"; the blocks are spliced in.
  std::string kubeconfig(const std::string& cluster, const std::string& user,
                         const std::string& extra_context = "") {
    return write("kube/config",
                 "apiVersion: v1\nkind: Config\ncurrent-context: main\nclusters:\n- name: c\n  cluster:\n" +
                     cluster + "users:\n- name: u\n  user:\n" + user +
                     "contexts:\n- name: main\n  context:\n    cluster: c\n    user: u\n"
                     "    namespace: team\n" +
                     extra_context);
  }
  std::string ca_data() const { return "    certificate-authority-data: " + base64(pem().cert) + "\n"; }

  /// from_kubeconfig must refuse; the message must contain every `needles`.
  void expect_refused(const std::string& path, std::initializer_list<std::string> needles,
                      const std::string& context = "") {
    CredentialsError err;
    const auto c = from_kubeconfig(path, context, err);
    EXPECT_FALSE(c.has_value());
    for (const auto& n : needles) EXPECT_NE(err.message.find(n), std::string::npos) << err.message;
    EXPECT_NE(err.message.find(path), std::string::npos) << err.message;
  }

  std::string dir_;
};

TEST_F(CredentialsTest, KubeconfigWithInlineDataAndToken) {
  const auto path =
      kubeconfig("    server: https://api.example.test:6443\n" + ca_data(), "    token: abc.def-ghi\n");
  CredentialsError err;
  const auto c = from_kubeconfig(path, "", err);
  ASSERT_TRUE(c.has_value()) << err.message;
  EXPECT_EQ(c->server, "https://api.example.test:6443");
  EXPECT_EQ(c->server_name, "api.example.test");
  EXPECT_EQ(c->ca_pem, pem().cert);
  EXPECT_EQ(c->token, "abc.def-ghi");
  EXPECT_TRUE(c->token_file.empty());
  EXPECT_EQ(c->namespace_, "team");
  EXPECT_EQ(c->source, "kubeconfig " + path + " context main");
}

TEST_F(CredentialsTest, KubeconfigRelativeFilesClientCertificateAndDefaultPort) {
  write("kube/pki/ca.crt", pem().cert);
  write("kube/pki/client.crt", pem().cert);
  write("kube/pki/client.key", pem().key);
  write("kube/token", "  file-token\n");
  const auto path = kubeconfig(
      "    server: https://api.example.test/\n    certificate-authority: pki/ca.crt\n",
      "    client-certificate: pki/client.crt\n    client-key: pki/client.key\n    tokenFile: token\n");
  CredentialsError err;
  const auto c = from_kubeconfig(path, "", err);
  ASSERT_TRUE(c.has_value()) << err.message;
  EXPECT_EQ(c->server, "https://api.example.test:443");
  EXPECT_EQ(c->ca_pem, pem().cert);
  EXPECT_EQ(c->client_cert_pem, pem().cert);
  EXPECT_EQ(c->client_key_pem, pem().key);
  EXPECT_EQ(c->token, "file-token");  // trimmed
  EXPECT_EQ(c->token_file, dir_ + "/kube/token");
}

TEST_F(CredentialsTest, KubeconfigNamedContextTlsServerNameAndIpv6) {
  const auto path =
      kubeconfig("    server: https://[::1]:7443\n    tls-server-name: kubernetes.default.svc\n" + ca_data() +
                     "    insecure-skip-tls-verify: false\n",
                 "    client-certificate-data: " + base64(pem().cert) +
                     "\n    client-key-data: " + base64(pem().key) + "\n",
                 "- name: other\n  context:\n    cluster: c\n    user: u\n");
  CredentialsError err;
  const auto c = from_kubeconfig(path, "other", err);
  ASSERT_TRUE(c.has_value()) << err.message;
  EXPECT_EQ(c->server, "https://[::1]:7443");
  EXPECT_EQ(c->server_name, "kubernetes.default.svc");
  EXPECT_EQ(c->client_key_pem, pem().key);
  EXPECT_TRUE(c->token.empty());
  EXPECT_EQ(c->namespace_, "default");  // the context sets none
  EXPECT_EQ(c->source, "kubeconfig " + path + " context other");
}

TEST_F(CredentialsTest, KubeconfigRefusesInsecureSkipTlsVerify) {
  expect_refused(kubeconfig("    server: https://a:1\n" + ca_data() + "    insecure-skip-tls-verify: true\n",
                            "    token: t\n"),
                 {"insecure-skip-tls-verify", "cluster 'c'"});
}

TEST_F(CredentialsTest, KubeconfigRefusesPluginsPasswordsAndImpersonation) {
  const std::string cluster = "    server: https://a:1\n" + ca_data();
  const std::map<std::string, std::string> users = {
      {"exec", "    exec:\n      command: aws\n      apiVersion: client.authentication.k8s.io/v1\n"},
      {"auth-provider", "    auth-provider:\n      name: oidc\n"},
      {"username", "    username: admin\n"},
      {"password", "    password: hunter2\n"},
      {"as", "    token: t\n    as: system:admin\n"},
  };
  for (const auto& [field, user] : users) {
    SCOPED_TRACE(field);
    const auto path = kubeconfig(cluster, user);
    CredentialsError err;
    EXPECT_FALSE(from_kubeconfig(path, "", err).has_value());
    EXPECT_NE(err.message.find("user 'u': " + field + " is not supported"), std::string::npos) << err.message;
    EXPECT_EQ(err.message.find("hunter2"), std::string::npos) << "a password in an error message";
  }
}

TEST_F(CredentialsTest, KubeconfigRefusesAClusterWithoutCa) {
  expect_refused(kubeconfig("    server: https://a:1\n", "    token: t\n"),
                 {"certificate-authority", "cluster 'c'"});
}

TEST_F(CredentialsTest, KubeconfigRefusesBadServers) {
  for (const std::string server : {"http://a:1", "https://a:1/k8s/clusters/x", "https://a:99999",
                                   "https://user@a:1", "https://[zz]:1", "a:1"}) {
    SCOPED_TRACE(server);
    expect_refused(kubeconfig("    server: " + server + "\n" + ca_data(), "    token: t\n"),
                   {"server '" + server});
  }
  expect_refused(kubeconfig(ca_data(), "    token: t\n"), {"no server"});
  expect_refused(kubeconfig("    server: https://a:1\n    proxy-url: http://proxy:3128\n" + ca_data(), ""),
                 {"proxy-url"});
}

TEST_F(CredentialsTest, KubeconfigRefusesBadCaAndKeyMaterial) {
  const std::string server = "    server: https://a:1\n";
  expect_refused(kubeconfig(server + "    certificate-authority-data: '%%%'\n", ""),
                 {"certificate-authority-data is not base64"});
  expect_refused(kubeconfig(server + "    certificate-authority-data: " + base64("not a cert") + "\n", ""),
                 {"certificate-authority-data is not a PEM"});
  expect_refused(kubeconfig(server + "    certificate-authority: missing.crt\n", ""),
                 {"certificate-authority:", "missing.crt"});
  write("kube/ca.crt", pem().cert);
  expect_refused(kubeconfig(server + "    certificate-authority: ca.crt\n" + ca_data(), ""),
                 {"both certificate-authority and certificate-authority-data"});
  expect_refused(kubeconfig(server + ca_data(), "    client-certificate-data: " + base64(pem().cert) + "\n"),
                 {"client-key"});
  expect_refused(kubeconfig(server + ca_data(), "    client-certificate-data: " + base64(pem().cert) +
                                                    "\n    client-key-data: " + base64(pem().cert) + "\n"),
                 {"client key is not a PEM private key"});
  expect_refused(kubeconfig(server + ca_data(), "    tokenFile: nope\n"), {"tokenFile", "nope"});
  expect_refused(kubeconfig(server + ca_data(), "    token: \"a\\r\\nX-Evil: 1\"\n"),
                 {"token holds characters"});
}

TEST_F(CredentialsTest, KubeconfigRefusesMissingPieces) {
  const auto path = kubeconfig("    server: https://a:1\n" + ca_data(), "    token: t\n");
  expect_refused(path, {"context 'nope' not found"}, "nope");
  expect_refused(write("kube/nocurrent", "clusters: []\ncontexts: []\n"), {"no current-context"});
  expect_refused(
      write("kube/dangling", "current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: gone\n"),
      {"cluster 'gone'", "not found"});
  expect_refused(write("kube/bad", "clusters: [\n"), {"not YAML"});
  expect_refused(write("kube/list", "- a\n- b\n"), {"not a kubeconfig"});
  expect_refused(dir_ + "/absent", {"cannot read"});
}

// --- in-cluster -------------------------------------------------------------------------------

Getenv fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& k) -> std::optional<std::string> {
    const auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST_F(CredentialsTest, InClusterReadsTheServiceAccount) {
  write("sa/token", "sa-token\n");
  write("sa/ca.crt", pem().cert);
  write("sa/namespace", "ingress-system");
  CredentialsError err;
  const auto c =
      in_cluster(fake_env({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}),
                 err, dir_ + "/sa");
  ASSERT_TRUE(c.has_value()) << err.message;
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->server_name, "10.96.0.1");
  EXPECT_EQ(c->token, "sa-token");
  EXPECT_EQ(c->token_file, dir_ + "/sa/token");
  EXPECT_EQ(c->ca_pem, pem().cert);
  EXPECT_EQ(c->namespace_, "ingress-system");
  EXPECT_EQ(c->source, "in-cluster");

  const auto v6 =
      in_cluster(fake_env({{"KUBERNETES_SERVICE_HOST", "fd00::1"}, {"KUBERNETES_SERVICE_PORT", "6443"}}), err,
                 dir_ + "/sa");
  ASSERT_TRUE(v6.has_value()) << err.message;
  EXPECT_EQ(v6->server, "https://[fd00::1]:6443");
  EXPECT_EQ(v6->server_name, "fd00::1");
}

TEST_F(CredentialsTest, InClusterNamesWhatIsMissing) {
  const auto env = fake_env({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}});
  const auto refused = [&](const Getenv& e, const std::string& needle) {
    CredentialsError err;
    EXPECT_FALSE(in_cluster(e, err, dir_ + "/sa").has_value());
    EXPECT_NE(err.message.find(needle), std::string::npos) << err.message;
  };
  refused(fake_env({{"KUBERNETES_SERVICE_PORT", "443"}}), "KUBERNETES_SERVICE_HOST is not set");
  refused(fake_env({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}}), "KUBERNETES_SERVICE_PORT is not set");
  refused(fake_env({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "https"}}),
          "KUBERNETES_SERVICE_PORT 'https' is not a port");
  refused(env, dir_ + "/sa/token");
  write("sa/token", "bad\r\ntoken");
  refused(env, "not allowed in a bearer token");
  write("sa/token", "good");
  refused(env, dir_ + "/sa/ca.crt");
  write("sa/ca.crt", "garbage");
  refused(env, "is not a PEM certificate list");
  write("sa/ca.crt", pem().cert);
  refused(env, dir_ + "/sa/namespace");
  write("sa/namespace", "\n");
  refused(env, "namespace file");
  write("sa/namespace", "default");
  CredentialsError err;
  EXPECT_TRUE(in_cluster(env, err, dir_ + "/sa").has_value()) << err.message;
}

// --- TokenSource ----------------------------------------------------------------------------------

void set_mtime(const std::string& path, long sec) {
  const timespec times[2] = {{sec, 0}, {sec, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

TEST_F(CredentialsTest, TokenSourceRereadsTheFileWhenItChanges) {
  Credentials c;
  c.token_file = write("token", "first\n");
  c.token = "first";
  TokenSource tokens(c);
  EXPECT_EQ(tokens.current(), "first");
  write("token", "second-longer\n");  // another size
  EXPECT_EQ(tokens.current(), "second-longer");
  EXPECT_EQ(c.token, "second-longer");
  // Same size, only the modification time differs (a rotation within the same second elsewhere).
  set_mtime(c.token_file, 1000);
  EXPECT_EQ(tokens.current(), "second-longer");
  write("token", "third-longer-\n");
  set_mtime(c.token_file, 2000);
  EXPECT_EQ(tokens.current(), "third-longer-");
  // A file caught empty (mid-rotation) or gone keeps the last good token.
  write("token", "");
  EXPECT_EQ(tokens.current(), "third-longer-");
  fs::remove(c.token_file);
  EXPECT_EQ(tokens.current(), "third-longer-");
  write("token", "fourth");
  EXPECT_EQ(tokens.current(), "fourth");
}

TEST_F(CredentialsTest, TokenSourceWithoutFileReturnsTheStaticToken) {
  Credentials c;
  c.token = "static";
  TokenSource tokens(c);
  EXPECT_EQ(tokens.current(), "static");
}

}  // namespace
}  // namespace phigate::kube
