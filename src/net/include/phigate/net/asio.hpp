#pragma once
// The one way to include Asio in phigate. <utility> first: some Asio headers miss it under
// GCC 12. Under clang (clang-tidy 14), tell Asio that coroutines are there.
#include <utility>
#if defined(__clang__)
#ifndef BOOST_ASIO_HAS_CO_AWAIT
#define BOOST_ASIO_HAS_CO_AWAIT 1
#endif
#ifndef BOOST_ASIO_HAS_STD_COROUTINE
#define BOOST_ASIO_HAS_STD_COROUTINE 1
#endif
#endif
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace phigate::net {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
template <class T>
using awaitable = asio::awaitable<T>;
inline constexpr auto use_awaitable_tuple = asio::as_tuple(asio::use_awaitable);
/// For an operation co_awaited where it is started: co_await op(..., deferred_tuple) in an
/// awaitable coroutine runs the initiation without the coroutine frame use_awaitable makes for it.
inline constexpr auto deferred_tuple = asio::as_tuple(asio::deferred);
}  // namespace phigate::net
