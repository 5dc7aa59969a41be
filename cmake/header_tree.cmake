# Every header is included as <cafraft/...>, in a build tree as once installed:
# BUILD/include/cafraft holds links to ROOT's actors/, messages/ and runtime/, and
# BUILD/gen/cafraft/messages/ the code protoc generates from messages/*.proto.
#
#   cafraft_header_tree(ROOT)
# sets CAFRAFT_INCLUDE_DIR, CAFRAFT_GEN_DIR, PROTO_SOURCES and PROTO_HEADERS.
function(cafraft_header_tree root)
  set(include_dir ${CMAKE_BINARY_DIR}/include)
  set(gen_dir ${CMAKE_BINARY_DIR}/gen)
  set(out ${gen_dir}/cafraft/messages)
  file(MAKE_DIRECTORY ${include_dir}/cafraft ${out})
  foreach(dir actors messages runtime)
    file(CREATE_LINK ${root}/${dir} ${include_dir}/cafraft/${dir} SYMBOLIC)
  endforeach()
  set(sources)
  set(headers)
  foreach(name raft storage wire)
    add_custom_command(
      OUTPUT ${out}/${name}.pb.cc ${out}/${name}.pb.h
      COMMAND protobuf::protoc --cpp_out=${gen_dir} -I${include_dir}
              ${include_dir}/cafraft/messages/${name}.proto
      DEPENDS ${root}/messages/${name}.proto protobuf::protoc
      COMMENT "protoc messages/${name}.proto")
    list(APPEND sources ${out}/${name}.pb.cc)
    list(APPEND headers ${out}/${name}.pb.h)
  endforeach()
  set(CAFRAFT_INCLUDE_DIR ${include_dir} PARENT_SCOPE)
  set(CAFRAFT_GEN_DIR ${gen_dir} PARENT_SCOPE)
  set(PROTO_SOURCES ${sources} PARENT_SCOPE)
  set(PROTO_HEADERS ${headers} PARENT_SCOPE)
endfunction()
