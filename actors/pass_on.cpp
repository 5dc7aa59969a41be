#include <cafraft/actors/pass_on.hpp>

#include <cafraft/messages/raft.pb.h>

namespace cafraft {

bool is_raft_message(const caf::type_erased_tuple& x) {
  return x.match_elements<pb::AppendEntries>() || x.match_elements<pb::AppendEntriesResponse>() ||
         x.match_elements<pb::RequestVote>() || x.match_elements<pb::RequestVoteResponse>() ||
         x.match_elements<pb::InstallSnapshot>() ||
         x.match_elements<pb::InstallSnapshotResponse>() || x.match_elements<pb::TimeoutNow>() ||
         x.match_elements<pb::ReadIndexRequest>() || x.match_elements<pb::ReadIndexResponse>();
}

bool is_client_request(const caf::type_erased_tuple& x) {
  return x.match_elements<pb::PutRequest>() || x.match_elements<pb::DeleteRequest>() ||
         x.match_elements<pb::CasRequest>() || x.match_elements<pb::ProposeRequest>() ||
         x.match_elements<pb::OpenSessionRequest>() || x.match_elements<pb::GetRequest>() ||
         x.match_elements<pb::QueryRequest>();
}

} // namespace cafraft
