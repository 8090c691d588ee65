/* The few build settings upstream's interactive service reads from its generated config.h,
 * written here so that the compliance stage can compile only src/openvpnserv (and the WFP
 * file it uses) without running upstream's configure, which wants a TLS library. */
#ifndef OPENVPNSERV_COMPLIANCE_CONFIG_H
#define OPENVPNSERV_COMPLIANCE_CONFIG_H
#define PACKAGE "openvpn"
#define PACKAGE_NAME "OpenVPN"
#define PACKAGE_TARNAME "openvpn"
#define TAP_WIN_COMPONENT_ID "tap0901"
#define HAVE_WINDOWS_H 1
#define HAVE_WINSOCK2_H 1
#define HAVE_WS2TCPIP_H 1
#define HAVE_STDARG_H 1
#define HAVE_STDIO_H 1
#define HAVE_STDINT_H 1
#define HAVE_STDLIB_H 1
#define HAVE_STRING_H 1
#define HAVE_TIME_H 1
#define HAVE_SYS_TYPES_H 1
#define HAVE_CTYPE_H 1
#define HAVE_ERRNO_H 1
#define HAVE_LIMITS_H 1
#define HAVE_FCNTL_H 1
#define HAVE_IO_H 1
#define HAVE_DIRECT_H 1
#define HAVE_SYS_STAT_H 1
#define HAVE_INTTYPES_H 1
#define HAVE_UNISTD_H 1
#define ENABLE_CRYPTO_OPENSSL 1
#endif
