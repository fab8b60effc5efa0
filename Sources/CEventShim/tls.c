/* tls.c: OpenSSL for Redis links. A ce_tls_config is one client SSL_CTX (CA store,
 * client certificate, verify mode) shared by every link made with it; a session is
 * one link's SSL, naming the server (SNI) and, when asked, checking that name. */
#include "CEventShim.h"
#include "shim_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

struct ce_tls_config {
    SSL_CTX *ctx;
    int verify; /* 0 none, 1 optional, 2 required */
};

/* The reason of OpenSSL's latest queued error ("no such file", "key values mismatch"), or dflt. */
static const char *queued_reason(const char *dflt) {
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    return reason ? reason : dflt;
}

/* Fill err with "<what> <path>: <reason>" and free the context; NULL. */
static ce_tls_config *config_fail(SSL_CTX *ctx, const char *what, const char *path, char *err, size_t err_len) {
    snprintf(err, err_len, "%s%s%s: %s", what, path ? " " : "", path ? path : "", queued_reason("unknown error"));
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* A client context; NULL with a message in err on failure. */
ce_tls_config *ce_tls_config_new(int verify, const char *ca_file, const char *ca_path, const char *cert_file,
                                 const char *key_file, char *err, size_t err_len) {
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return config_fail(NULL, "cannot create a TLS context", NULL, err, err_len);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (ca_file || ca_path) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, ca_path) != 1)
            return config_fail(ctx, "cannot load the CA certificates", ca_file ? ca_file : ca_path, err, err_len);
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        return config_fail(ctx, "cannot load the system CA store", NULL, err, err_len);
    }
    if (cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
            return config_fail(ctx, "cannot load the client certificate", cert_file, err, err_len);
        const char *key = key_file ? key_file : cert_file;
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
            return config_fail(ctx, "cannot load the client key", key, err, err_len);
        if (SSL_CTX_check_private_key(ctx) != 1)
            return config_fail(ctx, "the client key does not match the certificate", cert_file, err, err_len);
    }
    ce_tls_config *c = calloc(1, sizeof(*c));
    if (!c) {
        SSL_CTX_free(ctx);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    c->ctx = ctx;
    c->verify = verify;
    return c;
}

/* Free a config (links made with it hold their own references to the SSL_CTX). */
void ce_tls_config_free(ce_tls_config *c) {
    if (!c) return;
    SSL_CTX_free(c->ctx);
    free(c);
}

/* 1 when name is an IPv4 or IPv6 literal. */
static int is_ip_literal(const char *name) {
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* A client SSL for one link; NULL on failure (out of memory, a name OpenSSL refuses). */
SSL *ce_tls_session_new(ce_tls_config *c, const char *server_name, int check_hostname) {
    SSL *ssl = SSL_new(c->ctx);
    if (!ssl) return NULL;
    SSL_set_connect_state(ssl);
    if (server_name && *server_name) {
        int ip = is_ip_literal(server_name);
        if (!ip && SSL_set_tlsext_host_name(ssl, server_name) != 1) goto fail; /* SNI never names an IP */
        if (c->verify && check_hostname) {
            X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
            int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name) : SSL_set1_host(ssl, server_name);
            if (ok != 1) goto fail;
            if (!ip) SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        }
    }
    return ssl;
fail:
    SSL_free(ssl);
    return NULL;
}

/* Why an SSL call returning rc failed, in words ("certificate verify failed: unable to get
 * local issuer certificate"); clears OpenSSL's error queue. Returns buf. */
const char *ce_tls_error_text(SSL *ssl, int rc, char *buf, size_t len) {
    int kind = ssl ? SSL_get_error(ssl, rc) : SSL_ERROR_SSL;
    long verified = ssl && (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (verified != X509_V_OK) {
        snprintf(buf, len, "certificate verify failed: %s", X509_verify_cert_error_string(verified));
    } else if (kind == SSL_ERROR_ZERO_RETURN) {
        snprintf(buf, len, "the server closed the TLS connection");
    } else if (kind == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0) {
        snprintf(buf, len, "%s", errno ? strerror(errno) : "the server closed the connection during TLS");
    } else {
        unsigned long e = ERR_peek_last_error();
        const char *reason = e ? ERR_reason_error_string(e) : NULL;
        if (reason) snprintf(buf, len, "%s", reason);
        else if (e) ERR_error_string_n(e, buf, len);
        else snprintf(buf, len, "TLS error %d", kind);
    }
    ERR_clear_error();
    return buf;
}
