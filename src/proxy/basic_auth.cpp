#include "basic_auth.hpp"

#include <apr_general.h>
#include <apr_md5.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <cstring>
#include <mutex>

namespace phigate::proxy::detail {

using core::Error;
using core::ErrorKind;
using core::Outcome;

namespace {

/// Standard base64 with padding (RFC 7617 §2 uses RFC 4648 §4); false when malformed. OpenSSL's
/// EVP_DecodeBlock decodes; what it would tolerate (whitespace, '=' inside) is refused first.
bool base64_decode(std::string_view in, std::string& out) {
  if (in.empty() || in.size() % 4 != 0 || in.size() > 1U << 20) return false;
  const std::size_t pad = in.ends_with("==") ? 2 : in.ends_with('=') ? 1 : 0;
  constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (in.substr(0, in.size() - pad).find_first_not_of(kAlphabet) != std::string_view::npos) return false;
  out.resize(in.size() / 4 * 3);
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0 || static_cast<std::size_t>(n) < pad) return false;
  out.resize(static_cast<std::size_t>(n) - pad);
  return true;
}

void sha256(std::string_view a, unsigned char out[32]) {
  unsigned int len = 0;
  EVP_Digest(a.data(), a.size(), out, &len, EVP_sha256(), nullptr);
}

enum class Verdict { Match, Mismatch, Overloaded };

/// The process-wide verification pool: kVerifyThreads threads, at most kVerifyQueueMax jobs
/// running or queued. Never destroyed (a worker may still wait for a job at exit).
class VerifyPool {
 public:
  static VerifyPool& instance() {
    static VerifyPool* pool = new VerifyPool();  // NOLINT: leaked on purpose (see above)
    return *pool;
  }
  bool try_acquire() noexcept {
    auto n = pending_.load(std::memory_order_relaxed);
    do {
      if (n >= kVerifyQueueMax) return false;
    } while (!pending_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    return true;
  }
  void release() noexcept { pending_.fetch_sub(1, std::memory_order_relaxed); }
  net::asio::thread_pool& pool() noexcept { return pool_; }

 private:
  VerifyPool() : pool_(kVerifyThreads) {
    // APR's pools are not used by apr_password_validate, but APR must be initialised once.
    static std::once_flag once;
    std::call_once(once, [] { apr_initialize(); });
  }
  net::asio::thread_pool pool_;
  std::atomic<std::size_t> pending_{0};
};

/// apr_password_validate(password, hash) on the pool; resumes on the caller's executor.
net::awaitable<Verdict> verify_on_pool(std::string hash, std::string password) {
  auto& vp = VerifyPool::instance();
  if (!vp.try_acquire()) {
    OPENSSL_cleanse(password.data(), password.size());
    co_return Verdict::Overloaded;
  }
  const bool ok = co_await net::asio::async_initiate<decltype(net::asio::use_awaitable), void(bool)>(
      [&vp](auto handler, std::string h, std::string pw) {
        auto work = net::asio::make_work_guard(net::asio::get_associated_executor(handler));
        net::asio::post(vp.pool(), [&vp, handler = std::move(handler), work = std::move(work),
                                    h = std::move(h), pw = std::move(pw)]() mutable {
          const bool match = apr_password_validate(pw.c_str(), h.c_str()) == APR_SUCCESS;
          OPENSSL_cleanse(pw.data(), pw.size());
          vp.release();
          auto ex = work.get_executor();
          net::asio::post(ex, [handler = std::move(handler), match]() mutable { std::move(handler)(match); });
          work.reset();
        });
      },
      net::asio::use_awaitable, std::move(hash), std::move(password));
  co_return ok ? Verdict::Match : Verdict::Mismatch;
}

Decision auth_refusal(Outcome o, std::string context) {
  return Decision{o, Error::downstream(ErrorKind::Unauthorized, std::move(context)), false};
}

void count(metrics::WorkerShard& stats, metrics::WorkerShard::AuthBasic what) noexcept {
  stats.auth_basic[static_cast<std::size_t>(what)].inc();
}

}  // namespace

CredentialsParse parse_basic_authorization(const http::HeaderList& headers, std::string& user,
                                           std::string& password) {
  const std::string* value = nullptr;
  std::size_t seen = 0;
  for (const auto& h : headers) {
    if (http::iequals(h.name, "authorization")) {
      ++seen;
      value = &h.value;
    }
  }
  if (seen == 0) return CredentialsParse::Missing;
  if (seen > 1) return CredentialsParse::Malformed;  // two credentials: which one would a backend read?
  std::string_view v = *value;
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  const auto sp = v.find(' ');
  const auto scheme = v.substr(0, sp);
  if (!http::iequals(scheme, "basic")) return CredentialsParse::Missing;  // another scheme: challenge
  if (sp == std::string_view::npos) return CredentialsParse::Malformed;
  auto token = v.substr(sp + 1);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  if (token.size() > (kMaxCredentials + 2) / 3 * 4) return CredentialsParse::Malformed;
  std::string decoded;
  if (!base64_decode(token, decoded)) return CredentialsParse::Malformed;
  const auto colon = decoded.find(':');
  const bool control = std::any_of(decoded.begin(), decoded.end(), [](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return u < 0x20 || u == 0x7f;
  });
  if (colon == std::string::npos || colon == 0 || control || decoded.size() > kMaxCredentials) {
    OPENSSL_cleanse(decoded.data(), decoded.size());
    return CredentialsParse::Malformed;
  }
  user.assign(decoded, 0, colon);
  password.assign(decoded, colon + 1);
  OPENSSL_cleanse(decoded.data(), decoded.size());
  return CredentialsParse::Ok;
}

std::string www_authenticate_field(std::string_view realm) {
  std::string f = "WWW-Authenticate: Basic realm=\"";
  for (const char ch : realm) {
    if (ch == '"' || ch == '\\') f += '\\';
    f += ch;
  }
  f += "\"\r\n";
  return f;
}

CacheKey cache_key(std::string_view stored_hash, std::string_view user, std::string_view password) {
  CacheKey k{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const auto part : {stored_hash, user, password}) {
    const std::uint64_t n = part.size();
    EVP_DigestUpdate(ctx, &n, sizeof n);
    EVP_DigestUpdate(ctx, part.data(), part.size());
  }
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, k.data(), &len);
  EVP_MD_CTX_free(ctx);
  return k;
}

std::size_t VerifyCache::KeyHash::operator()(const CacheKey& k) const noexcept {
  std::size_t h = 0;
  std::memcpy(&h, k.data(), sizeof h);  // already uniformly distributed (SHA-256)
  return h;
}

bool VerifyCache::hit(const CacheKey& k, Clock::time_point now) const {
  const auto it = map_.find(k);
  return it != map_.end() && now < it->second;
}

void VerifyCache::insert(const CacheKey& k, Clock::time_point now) {
  if (max_ == 0) return;
  if (const auto it = map_.find(k); it != map_.end()) {
    it->second = now + ttl_;  // verified again after it expired: its place in the order stays
    return;
  }
  if (map_.size() >= max_) {
    map_.erase(order_.front());
    order_.pop_front();
  }
  map_.emplace(k, now + ttl_);
  order_.push_back(k);
}

namespace phase {

PhaseResult auth_basic(Request& r, const Snapshot&, const ConnectionView& c) {
  if (r.policy == nullptr || !r.policy->basic_auth.enabled) return std::nullopt;
  if (!r.policy->basic_auth.users || r.policy->basic_auth.users->empty()) {
    // translate fails such an Ingress closed; never serve the path unauthenticated if it did not.
    return Decision{Outcome::FailClosed,
                    Error::downstream(ErrorKind::Unavailable, "basic auth without users"), false};
  }
  if (r.satisfied_by_allowlist) {
    // satisfy: any, the client is in the allowlist: no credentials asked. What it sent anyway is
    // never checked, so never passed on, even under phigate.io/auth-forward-authorization (whose
    // promise is that a forwarded Authorization was verified: a backend reading the user from it
    // would serve anyone in the allowlist as "admin:x").
    r.head.headers.remove("authorization");
    return std::nullopt;
  }
  // A buffered request decided again once its body is whole: verified already by this very table
  // (the same Secret's users); any other table checks the credentials again, from the field.
  if (c.again && c.auth_verified != nullptr && c.auth_verified == r.policy->basic_auth.users.get()) {
    r.rare().auth_user = c.auth_verified_user;
    r.auth_verified = c.auth_verified;
    return std::nullopt;
  }
  auto& x = r.rare();
  switch (parse_basic_authorization(r.head.headers, x.auth_user, x.auth_password)) {
    case CredentialsParse::Ok:
      r.auth_pending = true;
      return std::nullopt;
    case CredentialsParse::Missing:
      return auth_refusal(Outcome::AuthRequired, "no basic credentials");
    case CredentialsParse::Malformed:
      break;
  }
  return auth_refusal(Outcome::AuthRequired, "malformed basic credentials");
}

}  // namespace phase

RequestRare::~RequestRare() {
  // A request refused after the auth-basic phase (a later phase, a reset, a second decision) never
  // reached verify_basic_auth's wipe: the password does not stay in freed memory either way.
  OPENSSL_cleanse(auth_password.data(), auth_password.capacity());
}

net::awaitable<std::optional<Decision>> verify_basic_auth(Request& r, metrics::WorkerShard& stats) {
  using AB = metrics::WorkerShard::AuthBasic;
  thread_local VerifyCache cache;  // one per worker thread: no lock
  r.auth_pending = false;
  const auto& auth = r.policy->basic_auth;
  const auto users = auth.users;  // held across the wait (the snapshot is pinned too)
  auto& x = r.rare();             // the Request outlives the wait
  // Look the user up without an early exit or a data-dependent comparison: SHA-256 of the names,
  // compared in constant time with every entry.
  unsigned char want[32];
  sha256(x.auth_user, want);
  const config::BasicAuthUser* found = nullptr;
  for (const auto& u : *users) {
    unsigned char have[32];
    sha256(u.name, have);
    const bool same = CRYPTO_memcmp(have, want, sizeof want) == 0;
    found = same ? &u : found;
  }
  // An unknown user is checked against a real hash of the table all the same (its result ignored),
  // so the answer takes as long as for a known user with a wrong password.
  const std::string& hash = found != nullptr ? found->hash : users->front().hash;
  const auto key = cache_key(hash, x.auth_user, x.auth_password);
  const auto now = VerifyCache::Clock::now();
  bool ok = false;
  if (found != nullptr && cache.hit(key, now)) {
    count(stats, AB::Cached);
    ok = true;
  } else {
    const auto verdict = co_await verify_on_pool(hash, x.auth_password);
    if (verdict == Verdict::Overloaded) {
      OPENSSL_cleanse(x.auth_password.data(), x.auth_password.size());
      count(stats, AB::Overloaded);
      co_return Decision{Outcome::Overloaded,
                         Error::downstream(ErrorKind::Overloaded, "basic auth verification queue full"),
                         false};
    }
    ok = verdict == Verdict::Match && found != nullptr;
    if (ok) {
      cache.insert(key, VerifyCache::Clock::now());
      count(stats, AB::Verified);
    }
  }
  OPENSSL_cleanse(x.auth_password.data(), x.auth_password.size());
  x.auth_password.clear();
  if (!ok) {
    count(stats, AB::Failed);
    co_return auth_refusal(Outcome::AuthFailed, "wrong user or password");
  }
  // ingress-nginx forwards the field; phigate does not by default: the backend behind basic auth
  // has no use for a reusable password, and every backend log that keeps it is a leak.
  r.auth_verified = users.get();
  if (!auth.forward_authorization) r.head.headers.remove("authorization");
  co_return std::nullopt;
}

}  // namespace phigate::proxy::detail
