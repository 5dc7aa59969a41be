// One call that makes an actor_system_config ready for cafraft: every message type (the
// protobuf bridge) and the error category. Call it before constructing the actor_system, on
// every process of a cluster: a type that is not registered travels as an empty message.
#pragma once

namespace caf {
class actor_system_config;
}

namespace cafraft {

void register_types(caf::actor_system_config& cfg);

} // namespace cafraft
