-- A packet pool capacity out of range is refused with its range.
packet.set_max_packets(0)
