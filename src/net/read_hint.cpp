#include "phigate/net/read_hint.hpp"

#include <boost/version.hpp>

#if BOOST_VERSION == 108300 && defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#include <boost/asio/detail/epoll_reactor.hpp>
#define PHIGATE_READ_HINT 1
#endif

namespace phigate::net {

#ifdef PHIGATE_READ_HINT
namespace {

namespace ad = boost::asio::detail;
using State = ad::epoll_reactor::descriptor_state;

// Pointers to two private members of the reactor's per-descriptor state. An explicit template
// instantiation may name private members ([temp.explicit]/12); the friend it defines hands the
// pointer out.
template <typename Tag, typename Tag::type Member>
struct Expose {
  friend typename Tag::type member_of(Tag) { return Member; }
};
struct TrySpeculative {
  using type = bool (State::*)[ad::epoll_reactor::max_ops];
  friend type member_of(TrySpeculative);
};
struct DescriptorMutex {
  using type = ad::conditionally_enabled_mutex State::*;
  friend type member_of(DescriptorMutex);
};
template struct Expose<TrySpeculative, &State::try_speculative_>;
template struct Expose<DescriptorMutex, &State::mutex_>;

// basic_socket's implementation object is protected: a derived class names it.
struct SocketAccess : tcp::socket {
  static auto implementation_member() { return &SocketAccess::impl_; }
};

}  // namespace

void note_read_drained(tcp::socket& s) noexcept {
  State* state = (s.*SocketAccess::implementation_member()).get_implementation().reactor_data_;
  if (state == nullptr) return;
  ad::conditionally_enabled_mutex::scoped_lock lock(state->*member_of(DescriptorMutex{}));
  (state->*member_of(TrySpeculative{}))[ad::epoll_reactor::read_op] = false;
}
#else
void note_read_drained(tcp::socket&) noexcept {}
#endif

}  // namespace phigate::net
