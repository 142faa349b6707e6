#pragma once
// Session-ticket keys shared by every worker and every SSL_CTX, so that a ticket issued on one
// worker (or before a reload) resumes on any other. Rotated by the control thread; read by
// workers during handshakes through an atomic shared_ptr (no lock on the hot path).
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace phigate::tls {

struct TicketKey {
  std::array<unsigned char, 16> name{};
  std::array<unsigned char, 32> aes{};
  std::array<unsigned char, 32> hmac{};
};

/// keys[0] encrypts new tickets; the others still decrypt (and ask for a renewal).
struct TicketKeys {
  std::vector<TicketKey> keys;
};

class TicketKeyRing {
 public:
  static constexpr std::size_t kKeep = 3;  // current + two previous
  TicketKeyRing();
  /// New random current key; the oldest beyond kKeep is dropped. Control thread.
  void rotate();
  /// Any thread. The returned keys are immutable.
  std::shared_ptr<const TicketKeys> current() const { return keys_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::shared_ptr<const TicketKeys>> keys_;
};

}  // namespace phigate::tls
