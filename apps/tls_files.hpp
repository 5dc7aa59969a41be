// Checks the TLS files a program is given before CAF sees them: CAF 0.17 only notices a bad
// file at the first connection, and then terminates or hangs (notes §5).
#pragma once

#include <filesystem>
#include <string>

#include <openssl/ssl.h>

namespace cafraft {

/// Loads certificate, key and CA into a scratch context. Returns why they are unusable, or "".
inline std::string check_tls_files(const std::string& cert, const std::string& key,
                                   const std::string& ca) {
  for (auto* path : {&cert, &key, &ca})
    if (std::error_code ec; !std::filesystem::is_regular_file(*path, ec))
      return "cannot read " + *path;
  auto* ctx = SSL_CTX_new(TLS_method());
  std::string why;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1)
    why = "--tls-cert " + cert + " is not a PEM certificate";
  else if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
    why = "--tls-key " + key + " is not a PEM private key";
  else if (SSL_CTX_check_private_key(ctx) != 1)
    why = "--tls-key does not belong to --tls-cert";
  else if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1)
    why = "--tls-ca " + ca + " is not a PEM CA certificate";
  SSL_CTX_free(ctx);
  return why;
}

} // namespace cafraft
