// Compiled by tests/typed/check.sh three times: as it is (it must compile), with
// CAFRAFT_UNDECLARED_REQUEST (a request the node does not take: it must not compile), and with
// CAFRAFT_WRONG_RESPONSE (a response handler of another type than declared: must not compile).
#include <chrono>

#include <caf/all.hpp>

#include <cafraft/messages/node_handle.hpp>

void ask(caf::event_based_actor* self, cafraft::node_handle node) {
  cafraft::pb::PutRequest put;
  self->request(node, std::chrono::seconds{1}, put)
      .then([](cafraft::pb::WriteResponse&) {}, [](caf::error&) {});
#ifdef CAFRAFT_UNDECLARED_REQUEST
  self->request(node, std::chrono::seconds{1}, cafraft::pb::AppendEntries{});
#endif
#ifdef CAFRAFT_WRONG_RESPONSE
  self->request(node, std::chrono::seconds{1}, cafraft::pb::GetRequest{})
      .then([](cafraft::pb::WriteResponse&) {}, [](caf::error&) {});
#endif
}

int main() {
  return 0;
}
