"""pasr.eval"""
