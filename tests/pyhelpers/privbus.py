# SPDX-License-Identifier: MIT
"""A private system bus for the tests (tests/integration/test-dbus.py,
tests/can/test-diagnose.py): a dbus-daemon of our own, on a socket in
@tmp, with the policy of Debian's system bus and ours (@policy, the file
bmsbridge installs in /usr/share/dbus-1/system.d/) included.

    sys.path.insert(0, os.path.join(HERE, "..", "pyhelpers"))
    from privbus import Bus
    bus = Bus(tmp, policy)      # bus.env: DBUS_SYSTEM_BUS_ADDRESS pointed at it
    ...
    bus.stop()
"""
import os
import subprocess


class Bus:
    def __init__(self, tmp, policy):
        self.sock = os.path.join(tmp, "system_bus_socket")
        conf = os.path.join(tmp, "bus.conf")
        # the system bus's own default policy (Debian's system.conf), and ours
        with open(conf, "w") as f:
            f.write("""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <include>%s</include>
</busconfig>
""" % (self.sock, policy))
        self.p = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork",
                                   "--print-address=1", "--nopidfile"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.address = self.p.stdout.readline().strip()
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
            self.env.pop(k, None)

    def stop(self):
        self.p.terminate()
        self.p.wait(5)
