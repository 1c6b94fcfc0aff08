"""pasr.train"""
