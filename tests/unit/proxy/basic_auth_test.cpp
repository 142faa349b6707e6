// Basic authentication in the proxy (basic_auth.hpp): the Authorization parser (attacker inputs),
// the WWW-Authenticate field, the per-worker verification cache event by event, and the verify
// step with APR on the pool (a known {SHA} hash: no htpasswd needed).
#include <gtest/gtest.h>

#include <memory>
#include <new>
#include <string_view>

#include "basic_auth.hpp"

namespace phigate::proxy::detail {
namespace {

using namespace std::chrono_literals;

http::HeaderList with(std::initializer_list<std::pair<std::string, std::string>> fields) {
  http::HeaderList h;
  for (const auto& [n, v] : fields) h.add(n, v);
  return h;
}

TEST(BasicAuthorization, WellFormed) {
  std::string user, pw;
  // alice:open sesame
  EXPECT_EQ(parse_basic_authorization(with({{"Authorization", "Basic YWxpY2U6b3BlbiBzZXNhbWU="}}), user, pw),
            CredentialsParse::Ok);
  EXPECT_EQ(user, "alice");
  EXPECT_EQ(pw, "open sesame");
  // The scheme is case-insensitive (RFC 9110 §11.1); the password may hold ':' and be empty.
  EXPECT_EQ(parse_basic_authorization(with({{"authorization", "bAsIc Ym9iOmE6Yg=="}}), user, pw),
            CredentialsParse::Ok);  // bob:a:b
  EXPECT_EQ(user, "bob");
  EXPECT_EQ(pw, "a:b");
  EXPECT_EQ(parse_basic_authorization(with({{"Authorization", "Basic Ym9iOg=="}}), user, pw),
            CredentialsParse::Ok);  // bob:
  EXPECT_EQ(pw, "");
}

TEST(BasicAuthorization, MissingOrAnotherSchemeIsAChallenge) {
  std::string user, pw;
  EXPECT_EQ(parse_basic_authorization(with({}), user, pw), CredentialsParse::Missing);
  EXPECT_EQ(parse_basic_authorization(with({{"Authorization", "Bearer abc.def"}}), user, pw),
            CredentialsParse::Missing);
  EXPECT_EQ(parse_basic_authorization(with({{"Authorization", "Digest username=\"a\""}}), user, pw),
            CredentialsParse::Missing);
  EXPECT_EQ(parse_basic_authorization(with({{"Proxy-Authorization", "Basic YTpi"}}), user, pw),
            CredentialsParse::Missing);
}

TEST(BasicAuthorization, AttackerInputsAreMalformed) {
  const std::string huge(5000, 'A');
  const std::vector<std::string> values = {
      "Basic",                       // no credentials
      "Basic ",                      // empty
      "Basic !!!!",                  // not base64
      "Basic YWxpY2U=",              // "alice": no colon
      "Basic Og==",                  // ":": empty user
      "Basic OmI=",                  // ":b": empty user
      "Basic YTpi=",                 // bad padding
      "Basic YTpiYw",                // no padding
      "Basic YT=pi",                 // '=' inside
      "Basic YQBiOmM=",              // NUL in the user ("a\0b:c")
      "Basic YTpiAGM=",              // NUL in the password
      "Basic YTpiDQpYLUV2aWw6IDE=",  // CR LF in the password
      "Basic " + huge,
  };
  for (const auto& v : values) {
    std::string user, pw;
    EXPECT_EQ(parse_basic_authorization(with({{"Authorization", v}}), user, pw), CredentialsParse::Malformed)
        << v.substr(0, 40);
  }
  std::string user, pw;
  // Two fields: which one a backend would read is anyone's guess.
  EXPECT_EQ(parse_basic_authorization(
                with({{"Authorization", "Basic YTpi"}, {"authorization", "Basic Yzpk"}}), user, pw),
            CredentialsParse::Malformed);
}

TEST(BasicAuthorization, RealmIsQuoted) {
  EXPECT_EQ(www_authenticate_field(""), "WWW-Authenticate: Basic realm=\"\"\r\n");
  EXPECT_EQ(www_authenticate_field("Team \"A\" \\ x"),
            "WWW-Authenticate: Basic realm=\"Team \\\"A\\\" \\\\ x\"\r\n");
}

// The cache, event by event: hit within the TTL, miss after; bounded, the oldest goes first; a
// changed hash (a changed Secret) is another key.
TEST(VerifyCache, EventByEvent) {
  VerifyCache c(2, 60s);
  const VerifyCache::Clock::time_point t0{};
  const auto a = cache_key("$apr1$x$y", "alice", "pw");
  const auto b = cache_key("$apr1$x$y", "bob", "pw");
  const auto d = cache_key("$apr1$x$y", "dave", "pw");
  EXPECT_FALSE(c.hit(a, t0));
  c.insert(a, t0);
  EXPECT_TRUE(c.hit(a, t0 + 59s));
  EXPECT_FALSE(c.hit(a, t0 + 60s));  // expired
  c.insert(b, t0 + 10s);
  EXPECT_EQ(c.size(), 2u);
  c.insert(d, t0 + 20s);  // full: a (the oldest) goes
  EXPECT_EQ(c.size(), 2u);
  EXPECT_FALSE(c.hit(a, t0 + 21s));
  EXPECT_TRUE(c.hit(b, t0 + 21s));
  EXPECT_TRUE(c.hit(d, t0 + 21s));
  c.insert(b, t0 + 65s);  // verified again: a new expiry, no second entry
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(c.hit(b, t0 + 120s));
  // Keys: every part counts, and the parts cannot slide into each other.
  EXPECT_NE(cache_key("$apr1$x$y", "alice", "pw"), cache_key("$apr1$x$z", "alice", "pw"));
  EXPECT_NE(cache_key("h", "alice", "pw"), cache_key("h", "alice", "pW"));
  EXPECT_NE(cache_key("h", "ab", "c"), cache_key("h", "a", "bc"));
  EXPECT_EQ(cache_key("h", "a", "b"), cache_key("h", "a", "b"));
}

TEST(VerifyCache, ZeroEntriesCachesNothing) {
  VerifyCache c(0, 60s);
  const auto a = cache_key("h", "u", "p");
  c.insert(a, {});
  EXPECT_FALSE(c.hit(a, {}));
}

// verify_basic_auth on an io_context: APR on the pool, the coroutine resumed on its executor.
struct Verify {
  config::RoutePolicy policy;
  metrics::WorkerShard stats;
  Verify() {
    policy.basic_auth.enabled = true;
    // {SHA} of "password" (base64 of its SHA-1), as `htpasswd -s` writes it.
    policy.basic_auth.users = std::make_shared<const std::vector<config::BasicAuthUser>>(
        std::vector<config::BasicAuthUser>{{"alice", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="}});
  }
  std::optional<Decision> run(const std::string& user, const std::string& pw, bool forward = false) {
    policy.basic_auth.forward_authorization = forward;
    http::MessageHead head;
    head.headers.add("Authorization", "Basic whatever");
    Request r(head);
    r.policy = &policy;
    r.auth_pending = true;
    r.rare().auth_user = user;
    r.rare().auth_password = pw;
    net::asio::io_context io;
    std::optional<Decision> out;
    bool done = false;
    net::asio::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
          out = co_await verify_basic_auth(r, stats);
          done = true;
        },
        net::asio::detached);
    io.run();
    EXPECT_TRUE(done);
    EXPECT_TRUE(r.rare_or_empty().auth_password.empty());  // wiped
    forwarded = head.headers.find("authorization") != nullptr;
    return out;
  }
  std::uint64_t count(metrics::WorkerShard::AuthBasic what) const {
    return stats.auth_basic[static_cast<std::size_t>(what)].get();
  }
  bool forwarded = false;
};

TEST(VerifyBasicAuth, RightPasswordThenCachedWrongOrUnknownRefused) {
  using AB = metrics::WorkerShard::AuthBasic;
  Verify v;
  EXPECT_FALSE(v.run("alice", "password").has_value());
  EXPECT_FALSE(v.forwarded);  // Authorization removed before the backend
  EXPECT_EQ(v.count(AB::Verified), 1u);
  EXPECT_FALSE(v.run("alice", "password").has_value());
  EXPECT_EQ(v.count(AB::Cached), 1u);  // the second time from the worker's cache
  const auto wrong = v.run("alice", "Password");
  ASSERT_TRUE(wrong.has_value());
  EXPECT_EQ(wrong->outcome, core::Outcome::AuthFailed);
  EXPECT_EQ(wrong->error.status(), 401);
  // An unknown user with the password of a known one: still refused (the dummy check's result is
  // never used).
  const auto unknown = v.run("mallory", "password");
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(unknown->outcome, core::Outcome::AuthFailed);
  EXPECT_EQ(v.count(AB::Failed), 2u);
  EXPECT_FALSE(v.run("alice", "password", true).has_value());
  EXPECT_TRUE(v.forwarded);  // auth-forward-authorization: "true"
}

// A request refused after the auth-basic phase never reaches verify_basic_auth's wipe: the rare
// fields' destructor wipes the password itself (a short one lives inside the object, so its bytes
// are still in the storage after the destructor ran).
TEST(VerifyBasicAuth, PasswordIsWipedWhenTheRequestEndsUnverified) {
  alignas(RequestRare) unsigned char storage[sizeof(RequestRare)];
  auto* rare = new (storage) RequestRare;
  rare->auth_user = "alice";
  rare->auth_password = "hunter2-secret";  // short: in the string's own buffer
  ASSERT_EQ(rare->auth_password.capacity(), 15u);
  rare->~RequestRare();
  const std::string_view bytes(reinterpret_cast<const char*>(storage), sizeof storage);
  EXPECT_EQ(bytes.find("hunter2"), std::string_view::npos);
  EXPECT_NE(bytes.find("alice"), std::string_view::npos);  // the check can see what is left
}

}  // namespace
}  // namespace phigate::proxy::detail
