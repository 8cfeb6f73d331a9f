#include "instance/signal_waiter.h"

#include <signal.h>

#include <utility>  // before asio: Boost 1.74 awaitable.hpp needs std::exchange

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

namespace baton::instance {

struct SignalWaiter::Impl {
  boost::asio::io_context ioc;
  boost::asio::signal_set signals{ioc, SIGINT, SIGTERM};
};

SignalWaiter::SignalWaiter() : impl_(std::make_unique<Impl>()) {}
SignalWaiter::~SignalWaiter() = default;

int SignalWaiter::wait() {
  int received = 0;
  impl_->signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) received = sig;
  });
  impl_->ioc.run();
  return received;
}

}  // namespace baton::instance
