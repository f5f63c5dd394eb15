#!/usr/bin/env bash
# An OpenLDAP directory on loopback, for deskgate's tests.
#
#   tests/peers/openldap.sh start    start slapd on ldap://127.0.0.1:10389 (fresh data)
#   tests/peers/openldap.sh stop     stop it
#
# Base dc=deskgate,dc=test. Every start loads the same entries through the running server
# (so the memberof overlay sees them). slapd logs at level "stats" to .peers/openldap/slapd.log,
# which shows every search filter exactly as the server parsed it.
#
# Seeded entries (user passwords "Passw0rd-<uid>"):
#   cn=deskgate,ou=services          service account, password "Svc-Passw0rd!"
#   uid=alice   in helpdesk; helpdesk is in vips; vips is in staff (three levels)
#   uid=bob     in "ops (eu)*" (a DN full of filter syntax), which is in ops-all
#   uid=carol   in cycle-a; cycle-a and cycle-b are members of each other
#   uid=dave    in chain-1 ⊂ chain-2 ⊂ chain-3 ⊂ chain-4 (for the depth limit)
#   uid=erin    in no group
#   uid=twin    exists twice, under ou=people and ou=contractors (an ambiguous login)
# Installs Debian's slapd and ldap-utils if missing (as root); slapd itself needs no root.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR="$ROOT/.peers/openldap"
PORT=10389
URL="ldap://127.0.0.1:$PORT"
BASE="dc=deskgate,dc=test"
ADMIN_DN="cn=admin,$BASE"
ADMIN_PASSWORD="admin-secret"

say() { echo "openldap.sh: $*"; }
die() { echo "openldap.sh: error: $*" >&2; exit 1; }

ensure_packages() {
    local missing=()
    for pkg in slapd ldap-utils; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} = 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "${missing[*]} missing; install them as root: apt-get install ${missing[*]}"
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || die "apt-get update failed"
    apt-get install -y -q "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

running_pid() {
    local pid
    [ -f "$DIR/slapd.pid" ] || return 1
    pid=$(tr -dc '0-9' <"$DIR/slapd.pid")
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = slapd ] || return 1
    echo "$pid"
}

answers() {
    ldapsearch -x -LLL -o nettimeout=2 -H "$URL" -s base -b "" namingContexts >/dev/null 2>&1
}

print_addresses() {
    say "serving $URL (base $BASE, service cn=deskgate,ou=services,$BASE)"
    say "  log: $DIR/slapd.log"
}

hash() { slappasswd -s "$1"; }

write_config() {
    cat >"$DIR/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema

modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof

pidfile $DIR/slapd.pid
argsfile $DIR/slapd.args

database mdb
maxsize 67108864
suffix "$BASE"
rootdn "$ADMIN_DN"
rootpw $(hash "$ADMIN_PASSWORD")
directory $DIR/db
index objectClass eq
index uid,member,uniqueMember eq

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint true

access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by dn.exact="cn=deskgate,ou=services,$BASE" read
    by * none
EOF
}

person() {
    local uid=$1 ou=$2 given=$3
    cat <<EOF
dn: uid=$uid,ou=$ou,$BASE
objectClass: inetOrgPerson
uid: $uid
cn: $given Example
sn: Example
givenName: $given
displayName: $given Example
mail: $uid@deskgate.test
o: Example Org
userPassword: $(hash "Passw0rd-$uid")

EOF
}

group() {
    local cn=$1
    shift
    echo "dn: cn=$cn,ou=groups,$BASE"
    echo "objectClass: groupOfNames"
    echo "cn: $cn"
    local member
    for member in "$@"; do echo "member: $member"; done
    echo
}

seed() {
    local people="ou=people,$BASE" groups="ou=groups,$BASE"
    {
        cat <<EOF
dn: $BASE
objectClass: dcObject
objectClass: organization
dc: deskgate
o: deskgate test directory

dn: ou=people,$BASE
objectClass: organizationalUnit
ou: people

dn: ou=contractors,$BASE
objectClass: organizationalUnit
ou: contractors

dn: ou=groups,$BASE
objectClass: organizationalUnit
ou: groups

dn: ou=services,$BASE
objectClass: organizationalUnit
ou: services

dn: cn=deskgate,ou=services,$BASE
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: deskgate
userPassword: $(hash 'Svc-Passw0rd!')

EOF
        person alice people Alice
        person bob people Bob
        person carol people Carol
        person dave people Dave
        person erin people Erin
        person twin people Twin
        person twin contractors Twin
        group helpdesk "uid=alice,$people"
        group vips "cn=helpdesk,$groups"
        group staff "cn=vips,$groups"
        group 'ops (eu)*' "uid=bob,$people"
        group ops-all "cn=ops (eu)*,$groups"
        group cycle-a "uid=carol,$people"
        group cycle-b "cn=cycle-a,$groups"
        group chain-1 "uid=dave,$people"
        group chain-2 "cn=chain-1,$groups"
        group chain-3 "cn=chain-2,$groups"
        group chain-4 "cn=chain-3,$groups"
        # Closing the cycle needs cycle-b to exist first.
        cat <<EOF
dn: cn=cycle-a,$groups
changetype: modify
add: member
member: cn=cycle-b,$groups

EOF
    } >"$DIR/seed.ldif"
    ldapmodify -x -a -H "$URL" -D "$ADMIN_DN" -w "$ADMIN_PASSWORD" -f "$DIR/seed.ldif" >"$DIR/seed.log" 2>&1 ||
        die "loading entries failed; see $DIR/seed.log"
}

cmd_start() {
    if pid=$(running_pid); then
        say "already running (pid $pid)"
        print_addresses
        return 0
    fi
    answers && die "something already answers LDAP on $URL"
    ensure_packages
    say "starting slapd on $URL with fresh data in $DIR"
    rm -rf "$DIR"
    mkdir -p "$DIR/db"
    write_config
    : >"$DIR/slapd.log"
    # -d keeps slapd in the foreground and sends the stats log to the file.
    setsid slapd -d stats -h "$URL/" -f "$DIR/slapd.conf" >>"$DIR/slapd.log" 2>&1 </dev/null &
    local i
    for i in $(seq 1 100); do
        answers && break
        sleep 0.1
    done
    answers || { tail -20 "$DIR/slapd.log" >&2; die "slapd did not answer on $URL; see $DIR/slapd.log"; }
    seed
    ldapwhoami -x -H "$URL" -D "uid=alice,ou=people,$BASE" -w Passw0rd-alice >/dev/null ||
        die "alice cannot bind after seeding"
    say "running (pid $(running_pid))"
    print_addresses
}

cmd_stop() {
    local pid i
    if ! pid=$(running_pid); then
        say "not running"
        return 0
    fi
    say "stopping slapd (pid $pid)"
    kill "$pid"
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "slapd did not stop within 10 s; killing it"
        kill -9 "$pid"
    fi
    say "stopped"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
*)
    echo "usage: $0 start | stop" >&2
    exit 2
    ;;
esac
