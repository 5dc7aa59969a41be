// Handlers that keep a node's actors alive whatever reaches them: CAF's defaults quit an actor
// on a stray error message and print unexpected messages. A malformed or unknown message gets
// invalid_request when it is a request and is dropped otherwise.
#pragma once

#include <caf/mailbox_element.hpp>
#include <caf/message.hpp>
#include <caf/result.hpp>
#include <caf/scheduled_actor.hpp>

#include <cafraft/messages/errors.hpp>

namespace cafraft {

inline void install_guards(caf::scheduled_actor* self) {
  self->set_error_handler([](caf::scheduled_actor*, caf::error&) {});
  self->set_default_handler(
      [](caf::scheduled_actor* s, caf::message_view&) -> caf::result<caf::message> {
        if (s->current_mailbox_element()->mid.is_request())
          return make_error(errc::invalid_request, "unsupported message");
        return caf::message{};
      });
}

} // namespace cafraft
