/* Upstream 2.7 generates this header from its message table (eventmsg.mc, not in the release
 * tarball); its service uses one id from it for its event-log entries, which the compliance
 * stage does not compare. */
#ifndef OPENVPNSERV_COMPLIANCE_EVENTMSG_H
#define OPENVPNSERV_COMPLIANCE_EVENTMSG_H
#define EVT_TEXT_2 0x00000002L
#endif
