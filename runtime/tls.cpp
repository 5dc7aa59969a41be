#include <cafraft/runtime/tls.hpp>

#include <filesystem>
#include <map>
#include <mutex>
#include <tuple>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace cafraft {

namespace {

std::string openssl_errors() {
  std::string out;
  while (auto e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty())
      out += "; ";
    out += buf;
  }
  return out;
}

} // namespace

std::shared_ptr<tls_context> tls_context::load(const tls_files& files, std::string& why) {
  for (auto* path : {&files.cert, &files.key, &files.ca, &files.client_ca})
    if (std::error_code ec; (path != &files.client_ca || !path->empty()) &&
                            !std::filesystem::is_regular_file(*path, ec)) {
      why = "cannot read " + *path;
      return nullptr;
    }
  auto* ctx = SSL_CTX_new(TLS_method());
  if (ctx == nullptr) {
    why = "cannot make a TLS context: " + openssl_errors();
    return nullptr;
  }
  std::shared_ptr<tls_context> result{new tls_context(ctx)};
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, files.cert.c_str()) != 1)
    why = "--tls-cert " + files.cert + " is not a PEM certificate";
  else if (SSL_CTX_use_PrivateKey_file(ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1)
    why = "--tls-key " + files.key + " is not a PEM private key";
  else if (SSL_CTX_check_private_key(ctx) != 1)
    why = "--tls-key does not belong to --tls-cert";
  else if (SSL_CTX_load_verify_locations(ctx, files.ca.c_str(), nullptr) != 1)
    why = "--tls-ca " + files.ca + " is not a PEM CA certificate";
  else if (!files.client_ca.empty() &&
           SSL_CTX_load_verify_locations(ctx, files.client_ca.c_str(), nullptr) != 1)
    why = "--tls-client-ca " + files.client_ca + " is not a PEM CA certificate";
  if (why.empty() && !files.client_ca.empty()) {
    // Certificates of either CA get through the handshake; which may stand for a node is
    // checked against the cluster's CA alone.
    result->node_store_ = X509_STORE_new();
    if (result->node_store_ == nullptr ||
        X509_STORE_load_locations(result->node_store_, files.ca.c_str(), nullptr) != 1)
      why = "--tls-ca " + files.ca + " is not a PEM CA certificate";
  }
  ERR_clear_error();
  if (!why.empty())
    return nullptr;
  // Both sides show a certificate of the cluster's CA, or the handshake fails.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return result;
}

std::shared_ptr<tls_context> tls_context::shared(const tls_files& files, std::string& why) {
  static std::mutex mtx;
  static std::map<std::tuple<std::string, std::string, std::string, std::string>,
                  std::weak_ptr<tls_context>>
      loaded;
  std::lock_guard<std::mutex> guard{mtx};
  auto& slot = loaded[{files.cert, files.key, files.ca, files.client_ca}];
  if (auto ctx = slot.lock())
    return ctx;
  auto ctx = load(files, why);
  slot = ctx;
  return ctx;
}

tls_context::~tls_context() {
  if (node_store_ != nullptr)
    X509_STORE_free(node_store_);
  SSL_CTX_free(ctx_);
}

tls_session::tls_session(std::shared_ptr<tls_context> ctx, bool server) : ctx_(std::move(ctx)) {
  ssl_ = SSL_new(ctx_->native());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(in_, -1); // an empty input means "wait for more", not end of stream
  SSL_set_bio(ssl_, in_, out_);    // the session owns both from here
  if (server)
    SSL_set_accept_state(ssl_);
  else
    SSL_set_connect_state(ssl_);
}

tls_session::~tls_session() {
  SSL_free(ssl_);
}

bool tls_session::failed(const char* what, int rc) {
  auto err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
    return true;
  why_ = std::string{what} + " failed";
  auto detail = openssl_errors();
  if (!detail.empty())
    why_ += ": " + detail;
  else if (err == SSL_ERROR_ZERO_RETURN)
    why_ += ": the other side closed TLS";
  if (auto v = SSL_get_verify_result(ssl_); v != X509_V_OK)
    why_ += std::string{" ("} + X509_verify_cert_error_string(v) + ")";
  return false;
}

bool tls_session::step() {
  if (done_)
    return true;
  auto rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    done_ = true;
    return flush_pending();
  }
  return failed("the TLS handshake", rc);
}

bool tls_session::start() {
  return step();
}

bool tls_session::flush_pending() {
  if (pending_.empty())
    return true;
  auto bytes = std::move(pending_);
  pending_.clear();
  return send(bytes.data(), bytes.size());
}

bool tls_session::receive(const char* data, size_t n, std::vector<char>& plain) {
  if (n > 0 && BIO_write(in_, data, static_cast<int>(n)) != static_cast<int>(n)) {
    why_ = "cannot buffer received TLS bytes";
    return false;
  }
  if (!step())
    return false;
  if (!done_)
    return true;
  char buf[16384];
  for (;;) {
    auto rc = SSL_read(ssl_, buf, sizeof(buf));
    if (rc <= 0)
      return failed("reading TLS", rc);
    plain.insert(plain.end(), buf, buf + rc);
  }
}

bool tls_session::send(const char* data, size_t n) {
  if (!done_) {
    pending_.insert(pending_.end(), data, data + n);
    return true;
  }
  while (n > 0) {
    auto rc = SSL_write(ssl_, data, static_cast<int>(std::min<size_t>(n, 1u << 30)));
    if (rc <= 0) {
      failed("writing TLS", rc);
      if (why_.empty())
        why_ = "writing TLS failed";
      return false;
    }
    data += rc;
    n -= static_cast<size_t>(rc);
  }
  return true;
}

void tls_session::take_output(std::vector<char>& out) {
  auto n = BIO_ctrl_pending(out_);
  if (n == 0)
    return;
  auto at = out.size();
  out.resize(at + n);
  auto got = BIO_read(out_, out.data() + at, static_cast<int>(n));
  out.resize(at + static_cast<size_t>(std::max(got, 0)));
}

bool tls_session::peer_may_be_node() const {
  auto* store = ctx_->node_store();
  if (store == nullptr)
    return true;
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (cert == nullptr)
    return false;
  bool ok = false;
  if (auto* check = X509_STORE_CTX_new()) {
    if (X509_STORE_CTX_init(check, store, cert, SSL_get_peer_cert_chain(ssl_)) == 1)
      ok = X509_verify_cert(check) == 1;
    X509_STORE_CTX_free(check);
  }
  X509_free(cert);
  ERR_clear_error();
  return ok;
}

std::vector<std::string> tls_session::peer_names() const {
  std::vector<std::string> names;
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (cert == nullptr)
    return names;
  if (auto* subject = X509_get_subject_name(cert)) {
    for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
         i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
      auto* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
      unsigned char* utf8 = nullptr;
      auto len = ASN1_STRING_to_UTF8(&utf8, data);
      if (len >= 0)
        names.emplace_back(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
      OPENSSL_free(utf8);
    }
  }
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      auto* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type != GEN_DNS)
        continue;
      auto* s = gn->d.dNSName;
      names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<size_t>(ASN1_STRING_length(s)));
    }
    GENERAL_NAMES_free(sans);
  }
  X509_free(cert);
  return names;
}

} // namespace cafraft
