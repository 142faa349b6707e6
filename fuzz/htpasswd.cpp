// libFuzzer target: the readers of a basic-auth Secret's users (parse_htpasswd for auth-file, the
// key `auth`; parse_auth_map for auth-map, one key per user; src/ingress/annotations_auth_impl.hpp).
// A Secret is written by whoever may edit the namespace, and its table decides who gets in.
// Input: byte 0 bit 0 clear: the rest is an htpasswd file; set: the rest is auth-map data, `key\0value\0`
// pairs (a repeated key keeps its first value).
// Properties:
//  - "" ⇔ a table; on an error `out` is left as it was, and the reason holds no control byte and no
//    '$' (so no hash) outside the one auth-map key it may start with, quoted and escaped;
//  - a table is non-empty, at most 1000 users, sorted by name without repeats; names non-empty,
//    without ':' or control bytes; hashes non-empty without control bytes; a bcrypt cost at most
//    12, SHA-crypt rounds at most 10,000, no other `$` scheme than $2a/b/x/y$, $apr1$, $1$, $5$, $6$;
//  - the table is exactly what an independent reading gives: htpasswd, every line but empty and
//    `#` ones (CR before LF dropped) as `user:hash[:comment]`; auth-map, every key with its value
//    less trailing CR/LF.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "annotations_auth_impl.hpp"
#include "check.hpp"
#include "phigate/ingress/annotations.hpp"

namespace {

using phigate::config::BasicAuthUser;

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// The cost bounds, read independently: bcrypt `$2?$NN$`, SHA-crypt `$5$rounds=N$` / `$6$...`.
bool cost_bounded(std::string_view h) {
  if (h.size() >= 4 && h.substr(0, 2) == "$2" && h[3] == '$') {
    if (std::string_view("abxy").find(h[2]) == std::string_view::npos) return false;
    if (h.size() < 7 || h[6] != '$' || !all_digits(h.substr(4, 2))) return false;
    return std::stoi(std::string(h.substr(4, 2))) <= 12;
  }
  if (h.starts_with("$5$rounds=") || h.starts_with("$6$rounds=")) {
    const auto rest = h.substr(10);
    const auto digits = rest.substr(0, rest.find('$'));
    if (rest.find('$') == std::string_view::npos || !all_digits(digits) || digits.size() > 10) return false;
    return std::stoull(std::string(digits)) <= 10000;
  }
  if (h.starts_with("$5$") || h.starts_with("$6$") || h.starts_with("$apr1$") || h.starts_with("$1$"))
    return true;
  return !h.starts_with("$");
}

bool same_users(std::vector<BasicAuthUser> a, const std::vector<BasicAuthUser>& b) {
  if (a.size() != b.size()) return false;
  std::sort(a.begin(), a.end(), [](const auto& x, const auto& y) { return x.name < y.name; });
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].hash != b[i].hash) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool map_form = (data[0] & 1) != 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::vector<BasicAuthUser> expect;  // the independent reading, before any check
  std::vector<std::string> names;     // every auth-map key (an error may quote one)
  std::map<std::string, std::string> map_data;
  std::string why;
  std::vector<BasicAuthUser> out{{"\x01sentinel", "\x01sentinel"}};
  if (!map_form) {
    for (std::string_view text = in; !text.empty();) {
      const auto nl = text.find('\n');
      auto line = text.substr(0, nl);
      text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty() || line.front() == '#') continue;
      const auto colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      auto hash = line.substr(colon + 1);
      hash = hash.substr(0, hash.find(':'));
      expect.push_back({std::string(line.substr(0, colon)), std::string(hash)});
    }
    why = phigate::ingress::detail::parse_htpasswd(in, out);
  } else {
    while (!in.empty()) {
      const auto k_end = in.find('\0');
      const auto key = in.substr(0, k_end);
      in = k_end == std::string_view::npos ? std::string_view{} : in.substr(k_end + 1);
      const auto v_end = in.find('\0');
      const auto value = in.substr(0, v_end);
      in = v_end == std::string_view::npos ? std::string_view{} : in.substr(v_end + 1);
      map_data.emplace(key, value);
    }
    for (const auto& [k, v] : map_data) {
      std::string_view h = v;
      while (!h.empty() && (h.back() == '\n' || h.back() == '\r')) h.remove_suffix(1);
      names.push_back(k);
      expect.push_back({k, std::string(h)});
    }
    why = phigate::ingress::detail::parse_auth_map(map_data, out);
  }

  if (!why.empty()) {
    FUZZ_CHECK(out.size() == 1 && out[0].name == "\x01sentinel", "a refused Secret still set a user table");
    // One printable line: an auth-map key in it is quoted and escaped (quote_value).
    FUZZ_CHECK(!has_control(why), "the reason is not one printable line");
    // The reader's own words hold no '$' (every hash scheme starts with one, and a hash is never
    // quoted). An htpasswd reason names no user at all (a user name is personal data); an auth-map
    // reason may start with `key "<key, escaped>"` (exactly one key's quote_value: one is never a
    // prefix of another, as it ends in an unescaped '"'), which is cut out before looking. Checking
    // the reason's shape, not searching for each hash in it, keeps a key's text from passing for a
    // hash (the search spelled `$2y-$0": '` out of a quoted key and the words after it).
    std::string_view rest = why;
    if (map_form && rest.starts_with("key ")) {
      bool found = false;
      for (const auto& n : names) {
        const auto q = phigate::ingress::quote_value(n, 100) + ":";
        if (rest.substr(4).starts_with(q)) {
          rest = rest.substr(4 + q.size());
          found = true;
          break;
        }
      }
      FUZZ_CHECK(found, "a reason names a key the Secret does not hold");
    }
    FUZZ_CHECK(rest.find('$') == std::string_view::npos, "the reason quotes a password hash");
    return 0;
  }
  FUZZ_CHECK(!out.empty() && out.size() <= 1000, "a table of no user or of more than 1000");
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto& u = out[i];
    FUZZ_CHECK(i == 0 || out[i - 1].name < u.name, "table not sorted by name, or a user repeated");
    FUZZ_CHECK(!u.name.empty() && u.name.find(':') == std::string::npos, "empty user name or ':' in it");
    FUZZ_CHECK(!u.hash.empty(), "empty hash accepted");
    FUZZ_CHECK(!has_control(u.name) && !has_control(u.hash), "control byte in a user name or hash");
    FUZZ_CHECK(cost_bounded(u.hash), "an unbounded or unknown hash scheme accepted (stalls every login)");
  }
  FUZZ_CHECK(same_users(std::move(expect), out),
             "the table differs from an independent reading of the Secret");
  return 0;
}
