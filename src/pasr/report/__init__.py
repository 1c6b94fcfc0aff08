"""pasr.report"""
