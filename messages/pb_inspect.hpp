// The bridge that lets every generated protobuf message travel as a CAF message type.
// One generic inspect() in the protobuf namespace, found by ADL: binary serializers carry the
// protobuf encoding as a byte string, to_string() prints the message's short debug form.
#pragma once

#include <string>
#include <type_traits>

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/sec.hpp>
#include <caf/serializer.hpp>
#include <google/protobuf/message.h>

#include <cafraft/messages/raft.pb.h>

namespace cafraft::pb {

template <class Inspector, class T>
std::enable_if_t<std::is_base_of<google::protobuf::Message, T>::value,
                 typename Inspector::result_type>
inspect(Inspector& f, T& x) {
  const char* tn = T::descriptor()->full_name().c_str();
  if constexpr (Inspector::writes_state) { // deserializer
    std::string buf;
    return f(caf::meta::type_name(tn), buf, caf::meta::load_callback([&]() -> caf::error {
               if (!x.ParseFromString(buf))
                 return caf::make_error(caf::sec::invalid_argument, "malformed protobuf");
               return caf::none;
             }));
  } else if constexpr (std::is_base_of<caf::serializer, Inspector>::value) {
    std::string buf;
    if (!x.SerializeToString(&buf))
      return caf::make_error(caf::sec::invalid_argument, "protobuf serialization failed");
    return f(caf::meta::type_name(tn), buf);
  } else { // to_string / deep_to_string
    auto str = x.ShortDebugString();
    return f(caf::meta::type_name(tn), str);
  }
}

} // namespace cafraft::pb
