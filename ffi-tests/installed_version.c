/* Built against an installed tree with pkg-config: prints virPKIVersion(). */
#include <stdio.h>

#include <virtpki.h>

int main(void)
{
    puts(virPKIVersion());
    /* One real call besides: the library works, not only links. */
    return virPKIDNMatch("C=GB,CN=*", "C=GB,CN=host") == 1 ? 0 : 1;
}
