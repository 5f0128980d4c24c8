#!/bin/sh
# install.sh installs nginx from Debian's nginx-light package (it has the
# auth_request module) for the e2e tests of embedtoken behind nginx. The
# tests start nginx themselves (foreground, a temporary prefix, loopback
# ports), so the package's own service is kept from starting: a
# policy-rc.d that refuses every start is in place during the install.
#
#   e2e/nginx/install.sh         prints the path of the nginx binary
set -eu

if [ -x /usr/sbin/nginx ]; then
	echo /usr/sbin/nginx
	exit 0
fi
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
policy=/usr/sbin/policy-rc.d
made=
if [ ! -e $policy ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee $policy >/dev/null
	$sudo chmod +x $policy
	made=1
fi
trap '[ -z "$made" ] || $sudo rm -f $policy' EXIT
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q --no-install-recommends nginx-light >&2 ||
	{ $sudo apt-get update -q >&2 && $sudo apt-get install -y -q --no-install-recommends nginx-light >&2; }
echo /usr/sbin/nginx
