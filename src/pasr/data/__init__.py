"""pasr.data"""
