import CBPFTreeShim
func _probe() -> Int { embeddedBPFObject_batch.count + Int(bt_num_possible_cpus()) }
