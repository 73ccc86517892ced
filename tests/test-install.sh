#!/bin/sh
# Install the build into a scratch directory and build the README example
# out of tree with `cc $(pkg-config --cflags --libs qaio)`, against the
# installed headers and shared library only; then run it, and check that
# the headers' view of AioContext matches the library's.
# Usage: test-install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

meson install -C "$build" --no-rebuild --destdir "$dest" >/dev/null
pcdir=$(dirname "$(find "$dest" -name qaio.pc | head -n 1)")
# Point the installed qaio.pc at the scratch tree (its paths derive from
# ${prefix}); its dependencies stay where the system has them.
sed -i "s|^prefix=|prefix=$dest|" "$pcdir/qaio.pc"
pc() { PKG_CONFIG_PATH="$pcdir" pkg-config "$@" qaio; }

for h in qemu/osdep.h block/aio.h qemu/timer.h qemu/main-loop.h qaio/config.h; do
    test -f "$(pc --variable=includedir)/qaio/$h" || { echo "not installed: $h"; exit 1; }
done
libdir=$(pc --variable=libdir)
ls "$libdir"/libqaio.so.0 "$libdir"/libqaio.a >/dev/null

cat > "$dest/abi.c" <<'C'
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qaio/qaio.h"
int main(void)
{
#if !defined(CONFIG_LINUX) || !defined(CONFIG_POSIX)
    return 2;
#endif
    if (CONFIG_COROUTINE_POOL) {
        /* usable in if (): that is the point of 0/1 */
    }
    return qaio_abi_matches() ? 0 : 1;
}
C
cc -Wall -Wextra -Werror -o "$dest/hello" "$src/examples/hello-loop.c" $(pc --cflags --libs)
cc -Wall -Wextra -Werror -o "$dest/abi" "$dest/abi.c" $(pc --cflags --libs)
out=$(LD_LIBRARY_PATH="$libdir" "$dest/hello")
echo "$out"
[ "$(echo "$out" | sort | tr '\n' ,)" = "bottom half,fd handler,timer," ]
LD_LIBRARY_PATH="$libdir" "$dest/abi"
echo "installed headers and library work out of tree"
