import EvtCore
