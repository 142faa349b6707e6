#include "phigate/tls/ticket_keys.hpp"

#include <openssl/rand.h>

#include "phigate/core/assert.hpp"

namespace phigate::tls {

namespace {
TicketKey random_key() {
  TicketKey k;
  // RAND_bytes only fails when the OS entropy source is broken: nothing sane to continue with.
  PHI_CHECK(RAND_bytes(k.name.data(), k.name.size()) == 1);
  PHI_CHECK(RAND_bytes(k.aes.data(), k.aes.size()) == 1);
  PHI_CHECK(RAND_bytes(k.hmac.data(), k.hmac.size()) == 1);
  return k;
}
}  // namespace

TicketKeyRing::TicketKeyRing() {
  auto keys = std::make_shared<TicketKeys>();
  keys->keys.push_back(random_key());
  keys_.store(std::move(keys), std::memory_order_release);
}

void TicketKeyRing::rotate() {
  auto next = std::make_shared<TicketKeys>();
  next->keys.push_back(random_key());
  const auto prev = current();
  for (const auto& k : prev->keys) {
    if (next->keys.size() >= kKeep) break;
    next->keys.push_back(k);
  }
  keys_.store(std::move(next), std::memory_order_release);
}

}  // namespace phigate::tls
