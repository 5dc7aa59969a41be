#include <cafraft/messages/register.hpp>

#include <caf/actor_system_config.hpp>

#include <cafraft/messages/errors.hpp>
#include <cafraft/messages/pb_inspect.hpp>

namespace cafraft {

void register_types(caf::actor_system_config& cfg) {
  // Short names: CAF 0.17 sends the type name with every message. Every process of a cluster
  // must use the same names. add_message_type<T> also registers std::vector<T>.
  cfg.add_message_type<pb::LogEntry>("r.Entry")
      .add_message_type<pb::HardState>("r.Hard")
      .add_message_type<pb::Member>("r.Member")
      .add_message_type<pb::RequestVote>("r.RV")
      .add_message_type<pb::RequestVoteResponse>("r.RVR")
      .add_message_type<pb::AppendEntries>("r.AE")
      .add_message_type<pb::AppendEntriesResponse>("r.AER")
      .add_message_type<pb::SnapshotMeta>("r.SnapMeta")
      .add_message_type<pb::InstallSnapshot>("r.IS")
      .add_message_type<pb::InstallSnapshotResponse>("r.ISR")
      .add_message_type<pb::PutRequest>("r.Put")
      .add_message_type<pb::DeleteRequest>("r.Del")
      .add_message_type<pb::GetRequest>("r.Get")
      .add_message_type<pb::ProposeRequest>("r.Prop")
      .add_message_type<pb::QueryRequest>("r.Query")
      .add_message_type<pb::QueryResponse>("r.QueryR")
      .add_message_type<pb::SnapshotNowRequest>("r.SnapNow")
      .add_message_type<pb::SnapshotReadRequest>("r.SnapRead")
      .add_message_type<pb::SnapshotChunk>("r.SnapChunk")
      .add_message_type<pb::WriteResponse>("r.WriteR")
      .add_message_type<pb::GetResponse>("r.GetR")
      .add_message_type<pb::NodeStatus>("r.Status")
      .add_message_type<pb::GroupList>("r.Groups")
      .add_message_type<pb::CreateGroupRequest>("r.GroupNew")
      .add_message_type<pb::RemoveGroupRequest>("r.GroupDel")
      .add_message_type<pb::KvCommand>("r.KvCmd")
      .add_message_type<pb::KvQuery>("r.KvQ")
      .add_message_type<pb::KvResult>("r.KvRes")
      .add_message_type<pb::Configuration>("r.Config")
      .add_message_type<pb::TimeoutNow>("r.TONow")
      .add_message_type<pb::JoinRequest>("r.Join")
      .add_message_type<pb::LeaveRequest>("r.Leave")
      .add_message_type<pb::MembershipResponse>("r.MemberR")
      .add_message_type<pb::LeaderInfo>("r.Leader")
      .add_message_type<pb::LeadershipEvent>("r.LdEvent")
      .add_message_type<pb::TransferLeadershipRequest>("r.Transfer")
      .add_message_type<pb::CasRequest>("r.Cas")
      .add_message_type<pb::ActorInfo>("r.ActorInfo")
      .add_message_type<pb::ActorDirectory>("r.ActorDir")
      .add_message_type<pb::InspectRequest>("r.InspectReq")
      .add_message_type<pb::Inspection>("r.Inspection")
      .add_message_type<pb::LogLines>("r.LogLines")
      .add_message_type<pb::BatchRequest>("r.Batch")
      .add_message_type<pb::BatchResponse>("r.BatchR")
      .add_message_type<pb::OpenSessionRequest>("r.OpenSess")
      .add_message_type<pb::ReadIndexRequest>("r.RI")
      .add_message_type<pb::ReadIndexResponse>("r.RIR")
      .add_message_type<pb::WatchRequest>("r.Watch")
      .add_message_type<pb::WatchStarted>("r.WatchOn")
      .add_message_type<pb::WatchBatch>("r.WatchB");
  cfg.add_error_category(error_category,
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                           return render(caf::error{code, error_category, ctx});
                         });
}

} // namespace cafraft
