// What a request gives the balancer: the upstream-hash-by key and the affinity cookie. Pure.
#include "balance_input.hpp"

#include <gtest/gtest.h>

#include <string>

namespace phigate::proxy::detail {
namespace {

using upstream::BalanceKind;
using upstream::BalanceSettings;
using upstream::HashSource;

struct Req {
  http::MessageHead head;
  Request r{head};
  Req() {
    r.client_ip = "192.0.2.7";
    r.host = "App.Example:8443";
    r.host_norm = "app.example";
    r.target = "/records/42?User=alice&x=1&id=7";
    r.path = std::string_view(r.target).substr(0, 11);
  }
};

BalanceSettings hashing(HashSource src, std::string name = "") {
  BalanceSettings b;
  b.kind = BalanceKind::Hash;
  b.hash_source = src;
  b.hash_name = std::move(name);
  return b;
}

TEST(BalanceInput, HashKey_EachVariable) {
  Req q;
  q.head.headers.add("X-User-Id", "u-1");
  q.head.headers.add("Cookie", "session=abc; theme=dark");
  std::string scratch;
  EXPECT_EQ(balance_hash_key(q.r, hashing(HashSource::RemoteAddr), scratch), "192.0.2.7");
  EXPECT_EQ(balance_hash_key(q.r, hashing(HashSource::RequestUri), scratch),
            "/records/42?User=alice&x=1&id=7");
  EXPECT_EQ(balance_hash_key(q.r, hashing(HashSource::Uri), scratch), "/records/42");
  EXPECT_EQ(balance_hash_key(q.r, hashing(HashSource::Host), scratch), "app.example");
  EXPECT_EQ(balance_hash_key(q.r, hashing(HashSource::Header, "x-user-id"), scratch), "u-1");
  EXPECT_EQ(balance_hash_key(q.r, hashing(HashSource::Cookie, "theme"), scratch), "dark");
  EXPECT_EQ(balance_hash_key(q.r, hashing(HashSource::Arg, "id"), scratch), "7");
  EXPECT_EQ(balance_hash_key(q.r, hashing(HashSource::Arg, "user"), scratch), "alice");  // nginx: any case
  // Absent: empty (the balancer then spreads the request instead of hashing "").
  EXPECT_EQ(balance_hash_key(q.r, hashing(HashSource::Header, "x-tenant"), scratch), "");
  EXPECT_EQ(balance_hash_key(q.r, hashing(HashSource::Cookie, "Session"), scratch), "");  // case-sensitive
  EXPECT_EQ(balance_hash_key(q.r, hashing(HashSource::Arg, "nope"), scratch), "");
  // Not hashing: empty whatever the source.
  auto rr = hashing(HashSource::RemoteAddr);
  rr.kind = BalanceKind::RoundRobin;
  EXPECT_EQ(balance_hash_key(q.r, rr, scratch), "");
}

TEST(BalanceInput, HashKey_RepeatedHeaderIsTheJoinedList) {
  Req q;
  q.head.headers.add("x-tenant", "a");
  q.head.headers.add("X-Tenant", "b");
  std::string scratch;
  EXPECT_EQ(balance_hash_key(q.r, hashing(HashSource::Header, "x-tenant"), scratch), "a, b");
}

TEST(BalanceInput, QueryArgument_EdgeCases) {
  EXPECT_EQ(query_argument("/p", "a"), "");
  EXPECT_EQ(query_argument("/p?a", "a"), "");
  EXPECT_EQ(query_argument("/p?a=", "a"), "");
  EXPECT_EQ(query_argument("/p?ab=1&a=2", "a"), "2");
  EXPECT_EQ(query_argument("/p?a=1&a=2", "a"), "1");
  EXPECT_EQ(query_argument("/p?&&a=%20x", "a"), "%20x");  // raw, as nginx
}

TEST(BalanceInput, CookieParsing_Rfc6265) {
  http::HeaderList h;
  h.add("Cookie", "a=1;b=2 ;  INGRESSCOOKIE = \"0123\" ; flag; c=x=y");
  EXPECT_EQ(cookie_value(h, "a"), "1");
  EXPECT_EQ(cookie_value(h, "b"), "2");
  EXPECT_EQ(cookie_value(h, "INGRESSCOOKIE"), "0123");  // quotes are not part of the value
  EXPECT_EQ(cookie_value(h, "c"), "x=y");               // split at the first '=' only
  EXPECT_EQ(cookie_value(h, "flag"), "");               // no '=': not a pair
  EXPECT_EQ(cookie_value(h, "ingresscookie"), "");      // names are case-sensitive
  EXPECT_EQ(cookie_value(h, ""), "");
  // A name inside another pair's value is not a cookie.
  http::HeaderList tricky;
  tricky.add("cookie", "x=INGRESSCOOKIE=evil");
  EXPECT_EQ(cookie_value(tricky, "INGRESSCOOKIE"), "");
  // A second Cookie field is read too; the first pair wins.
  http::HeaderList two;
  two.add("Cookie", "a=1");
  two.add("cookie", "route=first; route=second");
  EXPECT_EQ(cookie_value(two, "route"), "first");
}

TEST(BalanceInput, AffinityCookie_OnlyWhenAffinityIsOn) {
  Req q;
  q.head.headers.add("Cookie", "INGRESSCOOKIE=0123456789abcdef0123456789abcdef; other=1");
  BalanceSettings b;
  EXPECT_EQ(affinity_cookie_value(q.r, b), "");
  b.affinity_cookie = true;
  EXPECT_EQ(affinity_cookie_value(q.r, b), "0123456789abcdef0123456789abcdef");
  b.cookie_name = "other";
  EXPECT_EQ(affinity_cookie_value(q.r, b), "1");
}

}  // namespace
}  // namespace phigate::proxy::detail
