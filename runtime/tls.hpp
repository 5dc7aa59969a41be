// Mutual TLS for cafraft's connections, with OpenSSL over memory buffers: the connection actor
// hands it the bytes it received and sends the bytes it gives back, so TLS runs in the actor
// that owns the connection, and the other side's certificate is there to read (the node id it
// names, docs/protocol.md). Both sides must present a certificate signed by the cluster's CA.
#pragma once

#include <memory>
#include <string>
#include <vector>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct bio_st BIO;
typedef struct x509_store_st X509_STORE;

namespace cafraft {

/// Certificate, key and CA files (PEM). All three or none (plaintext). `client_ca`, optional:
/// the CA of client certificates, kept apart from the cluster's CA (`ca`, which signs the
/// nodes'): a certificate of it connects only as a client, never as a node.
struct tls_files {
  std::string cert;
  std::string key;
  std::string ca;
  std::string client_ca;
  bool enabled() const { return !cert.empty(); }
};

/// A loaded certificate, key and CA, shared by the connections of a process.
class tls_context {
public:
  /// Loads the files; null and `why` when they are unusable.
  static std::shared_ptr<tls_context> load(const tls_files& files, std::string& why);
  /// The same, loaded once per process for the same files.
  static std::shared_ptr<tls_context> shared(const tls_files& files, std::string& why);

  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  SSL_CTX* native() const { return ctx_; }
  /// The cluster's CA alone, when a client CA is trusted beside it (else null).
  X509_STORE* node_store() const { return node_store_; }

private:
  explicit tls_context(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
  X509_STORE* node_store_ = nullptr;
};

/// One side of one TLS connection.
class tls_session {
public:
  tls_session(std::shared_ptr<tls_context> ctx, bool server);
  ~tls_session();
  tls_session(const tls_session&) = delete;
  tls_session& operator=(const tls_session&) = delete;

  /// The client: begins the handshake (its first bytes are then in take_output()).
  bool start();

  /// Takes bytes received from the network; appends the plaintext they complete to `plain`.
  /// False on a TLS failure (`why()` says which).
  bool receive(const char* data, size_t n, std::vector<char>& plain);

  /// Encrypts `n` bytes of plaintext (held until the handshake is done).
  bool send(const char* data, size_t n);

  /// Moves the bytes to send to the network into `out` (appended).
  void take_output(std::vector<char>& out);

  bool handshake_done() const { return done_; }
  /// The other side's certificate: its subject's CN and its DNS subject alternative names.
  std::vector<std::string> peer_names() const;
  /// Whether the other side's certificate may stand for a node: signed by the cluster's CA
  /// (always, without a client CA; a client CA's certificate is only ever a client).
  bool peer_may_be_node() const;
  /// Whether a client CA is trusted apart from the cluster's (tls_files::client_ca).
  bool client_ca_apart() const { return ctx_->node_store() != nullptr; }
  const std::string& why() const { return why_; }

private:
  bool step();
  bool flush_pending();
  bool failed(const char* what, int rc);

  std::shared_ptr<tls_context> ctx_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;  // bytes from the network
  BIO* out_ = nullptr; // bytes to it
  bool done_ = false;
  std::vector<char> pending_; // plaintext sent before the handshake finished
  std::string why_;
};

} // namespace cafraft
