/* Stand-in for upstream's group check in the compliance stage: nobody is a member of any
 * group, so upstream's service judges every caller as an ordinary user (Wine runs every
 * process as an administrator). Linked instead of upstream's own function, which the build
 * renames out of the way; ours runs with MembershipSource::NoGroups for the same cases.
 * Upstream 2.6 passes three arguments, 2.7 four; the Windows x64 convention lets one
 * definition serve both. */
#include <windows.h>

BOOL
IsAuthorizedUser(PSID sid, HANDLE token, const WCHAR *admin_group, const WCHAR *service_user)
{
    (void) sid;
    (void) token;
    (void) admin_group;
    (void) service_user;
    return FALSE;
}
