// Basic authentication annotations (ingress-nginx internal/ingress/annotations/auth) and the
// readers of the Secret's users. Restated from ingress-nginx's documented behaviour; no code copied.
#include <algorithm>

#include "annotations_auth_impl.hpp"
#include "phigate/ingress/annotations.hpp"

namespace phigate::ingress::detail {

std::string parse_auth_type(std::string_view v, AnnotationContext& c) {
  if (v == "basic") {
    c.policy.basic_auth.enabled = true;
    return {};
  }
  if (v == "digest") {
    // Refused rather than ignored: the Ingress asked for authentication phigate cannot give.
    return "digest authentication is not supported by phigate (use basic, over TLS): the Ingress fails "
           "closed";
  }
  return "expected \"basic\" (\"digest\" is not supported)";
}

std::string parse_auth_secret(std::string_view v, AnnotationContext& c) {
  return parse_secret_ref(v, c.ns, c.policy.basic_auth.secret);
}

std::string parse_auth_secret_type(std::string_view v, AnnotationContext& c) {
  if (v == "auth-file") {
    c.policy.basic_auth.auth_map = false;
  } else if (v == "auth-map") {
    c.policy.basic_auth.auth_map = true;
  } else {
    return "expected \"auth-file\" (the Secret's key `auth` is an htpasswd file) or \"auth-map\" (one key "
           "per user)";
  }
  return {};
}

std::string parse_auth_realm(std::string_view v, AnnotationContext& c) {
  // Sent back in WWW-Authenticate as a quoted-string: printable ASCII only (a CR/LF would split the
  // field); '"' and '\' are escaped when the field is written.
  if (v.size() > 256) return "must be at most 256 characters";
  for (const char ch : v) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u >= 0x7f) return "must be printable ASCII (no control characters)";
  }
  c.policy.basic_auth.realm.assign(v);
  return {};
}

std::string parse_satisfy(std::string_view v, AnnotationContext& c) {
  // ingress-nginx ignores any other value (nginx's default, all); phigate refuses it: a typo in an
  // access rule is never guessed at.
  if (v == "any") {
    c.policy.satisfy = config::Satisfy::Any;
    return {};
  }
  if (v == "all") {
    c.policy.satisfy = config::Satisfy::All;
    return {};
  }
  return "expected \"any\" or \"all\"";
}

std::string parse_auth_forward_authorization(std::string_view v, AnnotationContext& c) {
  return parse_bool(v, c.policy.basic_auth.forward_authorization);
}

namespace {

/// Every check runs on a small pool shared by all Ingresses: a hash whose cost has no bound (bcrypt
/// cost 31, SHA-crypt with a billion rounds, yescrypt's memory) would let one Secret stall every
/// Ingress's logins. Accepted: bcrypt up to cost 12 (htpasswd -B writes 5), $apr1$, {SHA}, MD5-crypt
/// ($1$), SHA-crypt ($5$, $6$) up to 10,000 rounds (5,000 when unsaid), and DES crypt; "" or why not.
std::string check_cost(std::string_view hash, const std::string& where) {
  constexpr int kMostBcryptCost = 12;
  constexpr unsigned long kMostShaRounds = 10000;
  if (hash.size() >= 7 && hash[0] == '$' && hash[1] == '2' &&
      std::string_view("abxy").find(hash[2]) != std::string_view::npos && hash[3] == '$') {
    const auto digits = hash.substr(4, 2);
    if (hash[6] != '$' ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return where + ": malformed bcrypt hash";
    const int cost = (digits[0] - '0') * 10 + (digits[1] - '0');
    if (cost > kMostBcryptCost) {
      return where + ": bcrypt cost " + std::to_string(cost) + " is over " + std::to_string(kMostBcryptCost) +
             " (every check would stall the logins of every Ingress)";
    }
    return {};
  }
  if (hash.starts_with("$5$") || hash.starts_with("$6$")) {
    const auto rest = hash.substr(3);
    if (rest.starts_with("rounds=")) {
      unsigned long rounds = 0;
      const auto digits = rest.substr(7, rest.find('$') == std::string_view::npos ? 0 : rest.find('$') - 7);
      if (digits.empty() || digits.size() > 10 ||
          !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return where + ": malformed SHA-crypt rounds";
      for (const char c : digits) rounds = rounds * 10 + static_cast<unsigned long>(c - '0');
      if (rounds > kMostShaRounds) {
        return where + ": SHA-crypt rounds " + std::to_string(rounds) + " are over " +
               std::to_string(kMostShaRounds) + " (every check would stall the logins of every Ingress)";
      }
    }
    return {};
  }
  if (hash.starts_with("$apr1$") || hash.starts_with("$1$")) return {};
  if (hash.starts_with("$"))
    return where + ": unsupported password hash scheme (htpasswd's -B, -m, -s or -d)";
  return {};  // {SHA}, DES crypt (or plain text, which APR never matches on Linux)
}

/// "" or what is wrong with one user entry (`where` names its line or key).
std::string check_user(std::string_view name, std::string_view hash, const std::string& where) {
  if (name.empty()) return where + ": empty user name";
  if (hash.empty()) return where + ": empty password hash";
  const auto bad = [](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return u < 0x20 || u == 0x7f;
  };
  if (std::any_of(name.begin(), name.end(), bad)) return where + ": control character in the user name";
  if (name.find(':') != std::string_view::npos) return where + ": ':' in the user name";
  if (std::any_of(hash.begin(), hash.end(), bad)) return where + ": control character in the password hash";
  return check_cost(hash, where);
}

std::string finish(std::vector<config::BasicAuthUser>& users, std::vector<config::BasicAuthUser>& out) {
  std::sort(users.begin(), users.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (std::size_t i = 1; i < users.size(); ++i) {
    // The name is not repeated here: diagnostics reach logs, Events and check reports, and a
    // user name is personal data (the operator finds the repeat with `sort | uniq -d`).
    if (users[i].name == users[i - 1].name) return "a user name is listed twice";
  }
  if (users.empty()) return "no user";
  // Each request with credentials compares its user with every entry (in constant time, on the
  // worker's thread): the table is bounded.
  constexpr std::size_t kMostUsers = 1000;
  if (users.size() > kMostUsers) {
    return std::to_string(users.size()) + " users, more than " + std::to_string(kMostUsers) +
           " (basic authentication is for small teams: use an external identity provider for more)";
  }
  out = std::move(users);
  return {};
}

}  // namespace

std::string parse_htpasswd(std::string_view text, std::vector<config::BasicAuthUser>& out) {
  std::vector<config::BasicAuthUser> users;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    const auto where = "line " + std::to_string(line_no);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return where + ": expected user:hash";
    // htpasswd writes `user:hash`; Apache ignores anything after a second ':' (a comment field).
    auto hash = line.substr(colon + 1);
    if (const auto more = hash.find(':'); more != std::string_view::npos) hash = hash.substr(0, more);
    if (auto why = check_user(line.substr(0, colon), hash, where); !why.empty()) return why;
    users.push_back({std::string(line.substr(0, colon)), std::string(hash)});
  }
  return finish(users, out);
}

std::string parse_auth_map(const std::map<std::string, std::string>& data,
                           std::vector<config::BasicAuthUser>& out) {
  std::vector<config::BasicAuthUser> users;
  for (const auto& [name, hash] : data) {
    std::string_view h = hash;
    while (!h.empty() && (h.back() == '\n' || h.back() == '\r')) h.remove_suffix(1);  // `kubectl --from-file`
    // The key quoted and escaped: Secrets from a manifest directory are not validated like the API
    // server's keys, and this message reaches the log (found by fuzz/htpasswd.cpp).
    if (auto why = check_user(name, h, "key " + quote_value(name, 100)); !why.empty()) return why;
    users.push_back({name, std::string(h)});
  }
  return finish(users, out);
}

}  // namespace phigate::ingress::detail
