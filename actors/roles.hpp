// The three role actors. The node spawns one at a time, linked to itself, and hands it the Raft
// state; each gives the state back with a role_handover when it is done
// (actors/role_common.hpp). `seed` seeds the role's random source (election timeouts).
#pragma once

#include <cstdint>
#include <memory>

#include <caf/actor.hpp>
#include <caf/local_actor.hpp>

#include <cafraft/actors/context.hpp>
#include <cafraft/runtime/raft_state.hpp>

namespace cafraft {

caf::actor spawn_follower(caf::local_actor* node, node_context ctx, std::shared_ptr<raft_state> rs,
                          uint64_t seed);
caf::actor spawn_candidate(caf::local_actor* node, node_context ctx, std::shared_ptr<raft_state> rs,
                           uint64_t seed);
caf::actor spawn_leader(caf::local_actor* node, node_context ctx, std::shared_ptr<raft_state> rs,
                        uint64_t seed);

} // namespace cafraft
