// Certificates and keys for the CR* and PA* rules: parsed once per process (x509_impl.hpp).
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <fstream>
#include <list>
#include <map>
#include <mutex>

#include "x509_impl.hpp"

namespace phigate::check::x509 {
namespace {

/// SHA-256 of tag ‖ be64(|a|) ‖ a ‖ b: the length keeps (a, b) pairs apart.
Digest sha256(std::string_view tag, std::string_view a, std::string_view b = {}) {
  Digest d{};
  unsigned char n[8];
  for (int i = 0; i < 8; ++i)
    n[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(a.size()) >> (56 - 8 * i));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned int len = 0;
  const bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, tag.data(), tag.size()) == 1 &&
                  EVP_DigestUpdate(ctx, n, sizeof n) == 1 && EVP_DigestUpdate(ctx, a.data(), a.size()) == 1 &&
                  EVP_DigestUpdate(ctx, b.data(), b.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, d.data(), &len) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) d.fill(0);
  return d;
}

/// A bounded least-recently-used map from a PEM digest to what it parsed into.
template <class T>
class Lru {
 public:
  std::shared_ptr<const T> get(const Digest& k) {
    std::lock_guard lk(mu_);
    const auto it = map_.find(k);
    if (it == map_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second.second);
    return it->second.first;
  }
  void put(const Digest& k, std::shared_ptr<const T> v) {
    std::lock_guard lk(mu_);
    if (const auto it = map_.find(k); it != map_.end()) return;
    order_.push_front(k);
    map_.emplace(k, std::pair{std::move(v), order_.begin()});
    while (map_.size() > kCacheEntries) {
      map_.erase(order_.back());
      order_.pop_back();
    }
  }
  std::size_t size() {
    std::lock_guard lk(mu_);
    return map_.size();
  }

 private:
  std::mutex mu_;
  std::list<Digest> order_;
  std::map<Digest, std::pair<std::shared_ptr<const T>, std::list<Digest>::iterator>> map_;
};

Lru<Certs>& cert_cache() {
  static Lru<Certs> c;
  return c;
}
Lru<KeyCheck>& key_cache() {
  static Lru<KeyCheck> c;
  return c;
}

Digest der_fingerprint(X509* x) {
  Digest d{};
  unsigned int len = 0;
  if (X509_digest(x, EVP_sha256(), d.data(), &len) != 1 || len != d.size()) d.fill(0);
  return d;
}

void read_certs(std::string_view pem, std::size_t most, Certs& out) {
  if (pem.size() > kMostPemBytes) {
    out.error = "too large to read";
    return;
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                &BIO_free);
  if (!bio) {
    out.error = "out of memory";
    return;
  }
  ERR_clear_error();
  for (;;) {
    if (out.certs.size() >= most) {
      out.truncated = true;
      break;
    }
    X509Ptr x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!x) {
      const unsigned long e = ERR_peek_last_error();
      const bool end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
      if (!end) {
        out.error = "certificate " + std::to_string(out.certs.size() + 1) + " is not a valid PEM certificate";
      } else if (out.certs.empty()) {
        out.error = "holds no PEM certificate";
      }
      break;
    }
    out.fingerprints.push_back(der_fingerprint(x.get()));
    out.certs.push_back(std::move(x));
  }
  ERR_clear_error();
}

int no_passphrase(char*, int, int, void*) {
  return -1;  // an encrypted key cannot be served (phigate reads no passphrase): a finding
}

}  // namespace

std::shared_ptr<const Certs> parse_certs(std::string_view pem) {
  const Digest k = sha256("certs", pem);
  if (auto hit = cert_cache().get(k)) return hit;
  auto out = std::make_shared<Certs>();
  read_certs(pem, kMostCerts, *out);
  cert_cache().put(k, out);
  return out;
}

std::shared_ptr<const KeyCheck> check_key(std::string_view cert_pem, std::string_view key_pem) {
  const Digest k = sha256("key", cert_pem, key_pem);
  if (auto hit = key_cache().get(k)) return hit;
  auto out = std::make_shared<KeyCheck>();
  PkeyPtr key;
  if (key_pem.size() > kMostPemBytes) {
    out->error = "is too large to read";
  } else {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), &BIO_free);
    ERR_clear_error();
    if (bio) key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, &no_passphrase, nullptr));
    if (!key) out->error = "is not an unencrypted PEM private key";
  }
  if (key) {
    const auto certs = parse_certs(cert_pem);
    out->matches =
        !certs->certs.empty() && X509_check_private_key(certs->certs.front().get(), key.get()) == 1;
  }
  ERR_clear_error();
  key_cache().put(k, out);
  return out;
}

std::size_t cache_size() {
  return cert_cache().size() + key_cache().size();
}

bool read_file(const std::string& path, std::string& out, std::string& why) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    why = "cannot read " + path + ": " + ec.message();
    return false;
  }
  if (size > kMostPemBytes) {
    why = path + " is larger than 8 MiB";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  out.assign(static_cast<std::size_t>(size), '\0');
  if (!in || !in.read(out.data(), static_cast<std::streamsize>(size))) {
    out.clear();
    why = "cannot read " + path;
    return false;
  }
  return true;
}

std::shared_ptr<const std::set<Digest>> system_bundle(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const std::set<Digest>>> cache;
  {
    std::lock_guard lk(mu);
    if (const auto it = cache.find(path); it != cache.end()) return it->second;
  }
  std::shared_ptr<const std::set<Digest>> result;
  std::string pem, why;
  if (read_file(path, pem, why)) {
    Certs certs;
    read_certs(pem, kMostCerts, certs);
    result = std::make_shared<const std::set<Digest>>(certs.fingerprints.begin(), certs.fingerprints.end());
  }
  std::lock_guard lk(mu);
  return cache.try_emplace(path, std::move(result)).first->second;
}

bool not_after(const X509* x, std::int64_t& out) {
  const ASN1_TIME* t = X509_get0_notAfter(x);
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> epoch(ASN1_TIME_set(nullptr, 0), &ASN1_TIME_free);
  int days = 0, secs = 0;
  if (t == nullptr || !epoch || ASN1_TIME_diff(&days, &secs, epoch.get(), t) != 1) return false;
  out = static_cast<std::int64_t>(days) * 86400 + secs;
  return true;
}

bool weak_public_key(const X509* x, std::string& desc) {
  const EVP_PKEY* k = X509_get0_pubkey(x);
  if (k == nullptr) {
    desc = "unreadable key";
    return true;
  }
  const int bits = EVP_PKEY_get_bits(k);
  switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      desc = "RSA " + std::to_string(bits);
      return bits < 2048;
    case EVP_PKEY_EC:
      desc = "EC " + std::to_string(bits);
      return bits < 256;
    case EVP_PKEY_DSA:
      desc = "DSA " + std::to_string(bits);
      return true;
    default:
      desc = OBJ_nid2sn(EVP_PKEY_get_base_id(k));
      return false;  // Ed25519, Ed448
  }
}

bool weak_signature(const X509* x, std::string& desc) {
  int md = NID_undef;
  if (X509_get_signature_info(const_cast<X509*>(x), &md, nullptr, nullptr, nullptr) != 1) {
    md = NID_undef;
    OBJ_find_sigid_algs(X509_get_signature_nid(x), &md, nullptr);
  }
  const char* name = md != NID_undef ? OBJ_nid2sn(md) : nullptr;
  desc = name != nullptr ? name : "unknown digest";
  return md == NID_sha1 || md == NID_md5 || md == NID_md4 || md == NID_md2 || md == NID_md5_sha1;
}

bool self_signed(const X509* x) {
  return (X509_get_extension_flags(const_cast<X509*>(x)) & EXFLAG_SS) != 0;
}

bool covers(const X509* x, std::string_view host) {
  std::string probe;
  if (host.starts_with("*.")) {
    probe = "phigate-check-probe";
    probe.append(host.substr(1));
  } else {
    probe.assign(host);
  }
  const unsigned flags = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
  return X509_check_host(const_cast<X509*>(x), probe.data(), probe.size(), flags, nullptr) == 1;
}

}  // namespace phigate::check::x509
