"""Writes the bad-input corpus of tests/bad_input_e2e.rs: one JSON Lines file per function, each line a
case (`case`, the body as `body` JSON, `raw` text or `raw_hex` bytes, and the `expect`ed outcome).
Run from this folder: `python3 make-corpus.py`. Edit the cases here, not the .jsonl files."""
import json
ARN="arn:aws:sagemaker:us-east-1:111122223333:labeling-job/animals"
E=lambda t:{"error":t}
def pre(data, **kw):
    return {"version":"2018-10-06","labelingJobArn":kw.get("arn",ARN),"dataObject":data}
P=[]
def add(case, expect, body=None, raw=None, raw_hex=None):
    c={"case":case,"expect":expect}
    if raw is not None: c["raw"]=raw
    elif raw_hex is not None: c["raw_hex"]=raw_hex
    else: c["body"]=body
    P.append(c)
add("truncated JSON", E("InvalidEvent"), raw='{"version":"2018-10-06","labelingJobArn":"'+ARN+'","dataObj')
add("empty body", E("InvalidEvent"), raw='')
add("a JSON array", E("InvalidEvent"), body=[1,2])
add("a JSON string", E("InvalidEvent"), body="hello")
add("null", E("InvalidEvent"), raw="null")
add("no labelingJobArn", E("InvalidEvent"), body={"dataObject":{"source":"x"}})
add("no dataObject", E("InvalidEvent"), body={"labelingJobArn":ARN})
add("dataObject a string", E("InvalidEvent"), body={"labelingJobArn":ARN,"dataObject":"text"})
add("dataObject an array", E("InvalidEvent"), body={"labelingJobArn":ARN,"dataObject":[{"source":"x"}]})
add("labelingJobArn a number", E("InvalidEvent"), body={"labelingJobArn":7,"dataObject":{"source":"x"}})
add("dataObject empty", E("InvalidDataObject"), body=pre({}))
add("both source and source-ref", E("InvalidDataObject"), body=pre({"source":"a","source-ref":"s3://b/k"}))
add("source a number", E("InvalidDataObject"), body=pre({"source":3}))
add("source-ref null", E("InvalidDataObject"), body=pre({"source-ref":None}))
add("source-ref empty", E("InvalidDataObject"), body=pre({"source-ref":""}))
add("source-ref http", E("InvalidDataObject"), body=pre({"source-ref":"http://x/y.jpg"}))
add("source-ref a bucket without a key", E("InvalidDataObject"), body=pre({"source-ref":"s3://bucket"}))
add("source-ref a folder", E("InvalidDataObject"), body=pre({"source-ref":"s3://bucket/folder/"}))
add("data object over 100 KB", E("InvalidDataObject"), body=pre({"source":"x"*110000}))
add("ARN of a training job", E("InvalidLabelingJobArn"), body=pre({"source":"x"},arn="arn:aws:sagemaker:us-east-1:111122223333:training-job/x"))
add("ARN not an ARN", E("InvalidLabelingJobArn"), body=pre({"source":"x"},arn="animals"))
add("job name of 1,000 characters", E("InvalidLabelingJobArn"), body=pre({"source":"x"},arn="arn:aws:sagemaker:us-east-1:111122223333:labeling-job/"+"a"*1000))
add("job name with a slash", E("InvalidLabelingJobArn"), body=pre({"source":"x"},arn="arn:aws:sagemaker:us-east-1:111122223333:labeling-job/../x"))
add("NUL byte in inline source", {"human": True}, body=pre({"source":"a\u0000b"}))
add("inline source of 20 KB", {"human": True}, body=pre({"source":"y"*20000}))
add("already labeled under the LAN", {"human": False}, body=pre({"source-ref":"s3://b/1.jpg","category":0,"category-metadata":{"class-name":"cat"}}))
add("labeled under the LAN but the label failed", {"human": True}, body=pre({"source-ref":"s3://b/1.jpg","category-metadata":{"failure-reason":"x"}}))
add("integer past 64 bits, kept byte for byte", {"human": True, "manifest_line_contains": "123456789012345678901234567890"}, raw='{"labelingJobArn":"'+ARN+'","dataObject":{"source-ref":"s3://b/1.jpg","id":123456789012345678901234567890}}')
add("a number no f64 holds, kept", {"human": True, "manifest_line_contains": "1e400"}, raw='{"labelingJobArn":"'+ARN+'","dataObject":{"source-ref":"s3://b/1.jpg","x":1e400}}')
add("nesting past serde_json's limit in an extra key, kept", {"human": True, "manifest_line_contains": "["*200}, raw='{"labelingJobArn":"'+ARN+'","dataObject":{"source":"x","deep":'+'['*200+']'*200+'}}')
add("an unreadable value over 100 KB", E("InvalidDataObject"), raw='{"labelingJobArn":"'+ARN+'","dataObject":{"source":"x","deep":'+'['*60000+']'*60000+'}}')
add("invalid UTF-8", E("InvalidEvent"), raw_hex=("{\"labelingJobArn\":\""+ARN+"\",\"dataObject\":{\"source\":\"").encode().hex()+"fffe"+"\"}}".encode().hex())
with open("pre-human-task.jsonl","w") as f:
    for c in P: f.write(json.dumps(c)+"\n")
print(len(P))

C=[]
def req(payload=None, **kw):
    r={"version":"2018-10-06","labelingJobArn":kw.get("arn",ARN),"labelAttributeName":kw.get("lan","animal")}
    r["payload"]={"content":json.dumps(payload)} if payload is not None else kw.get("payload_obj",{})
    if "labelCategories" in kw: r["labelCategories"]=kw["labelCategories"]
    return r
def cadd(case, expect, body=None, raw=None):
    c={"case":case,"expect":expect}
    if raw is not None: c["raw"]=raw
    else: c["body"]=body
    C.append(c)
def cls(w,l): return {"workerId":w,"annotationData":{"content":json.dumps({"animal":{"label":l}})}}
def obj(i, answers, data=None):
    return {"datasetObjectId":i,"dataObject":data or {"s3Uri":f"s3://b/{i}.jpg"},"annotations":answers}
good=[obj("0",[cls("w1","cat"),cls("w2","cat")]), obj("1",[cls("w1","dog"),cls("w2","dog")])]
cadd("truncated JSON", E("InvalidEvent"), raw='{"version":"2018-10-06","labelingJobArn":"'+ARN+'","payl')
cadd("a JSON array", E("InvalidEvent"), body=[])
cadd("no payload", E("InvalidEvent"), body={"version":"x","labelingJobArn":ARN,"labelAttributeName":"animal"})
cadd("payload without s3Uri or content", E("InvalidRequest"), body=req(payload_obj={}))
cadd("payload s3Uri not s3", E("InvalidRequest"), body=req(payload_obj={"s3Uri":"https://b/k.json"}))
cadd("ARN malformed", E("InvalidRequest"), body=req(good, arn="not-an-arn"))
cadd("LAN with ../", E("InvalidRequest"), body=req(good, lan="../../etc"))
cadd("LAN ending in -metadata", E("InvalidRequest"), body=req(good, lan="animal-metadata"))
cadd("LAN source-ref", E("InvalidRequest"), body=req(good, lan="source-ref"))
cadd("LAN of 200 characters", E("InvalidRequest"), body=req(good, lan="a"*200))
cadd("payload not JSON", E("InvalidPayload"), body=dict(req(None), payload={"content":"[{\"datasetObjectId\":"}))
cadd("payload an object", E("InvalidPayload"), body=dict(req(None), payload={"content":"{\"a\":1}"}))
cadd("payload with a BOM", {"entries":2,"labeled":["0","1"]}, body=dict(req(None), payload={"content":"\ufeff"+json.dumps(good)}))
cadd("empty payload", {"entries":0}, body=req([]))
cadd("two good objects", {"entries":2,"labeled":["0","1"]}, body=req(good))
cadd("an element that is a number", {"entries":2,"labeled":["0","1"]}, body=req(good+[7]))
cadd("an element without datasetObjectId", {"entries":2,"labeled":["0","1"]}, body=req(good+[{"dataObject":{},"annotations":[cls("w1","cat")]}]))
cadd("annotations missing", {"entries":3,"labeled":["0","1"],"failed":["2"]}, body=req(good+[{"datasetObjectId":"2","dataObject":{"s3Uri":"s3://b/2.jpg"}}]))
cadd("no answers", {"entries":3,"labeled":["0","1"],"failed":["2"]}, body=req(good+[obj("2",[])]))
cadd("answer content not JSON", {"entries":3,"labeled":["0","1"],"failed":["2"]}, body=req(good+[obj("2",[{"workerId":"w1","annotationData":{"content":"{nope"}}])]))
cadd("answer without content or s3Uri", {"entries":3,"labeled":["0","1"],"failed":["2"]}, body=req(good+[obj("2",[{"workerId":"w1","annotationData":{}}])]))
cadd("answer s3Uri unreadable", {"entries":3,"labeled":["0","1"],"failed":["2"]}, body=req(good+[obj("2",[{"workerId":"w1","annotationData":{"s3Uri":"s3://gw-nowhere/x.json"}}])]))
cadd("one worker answering three times counts once", {"entries":1,"labeled":["0"],"class_name":{"0":"dog"}}, body=req([obj("0",[cls("w1","cat"),cls("w1","cat"),cls("w1","cat"),cls("w2","dog"),cls("w3","dog")])], labelCategories=["cat","dog"]))
cadd("duplicate datasetObjectId merged", {"entries":1,"labeled":["0"]}, body=req([obj("0",[cls("w1","cat")]), obj("0",[cls("w2","cat")])]))
cadd("an odd answer shape does not flip the batch", {"entries":2,"labeled":["0","1"],"class_name":{"0":"cat","1":"dog"}}, body=req([obj("0",[cls("w1","cat"),cls("w2","cat"),{"workerId":"w3","annotationData":{"content":json.dumps({"boundingBox":{"boundingBoxes":[]}})}}]), obj("1",[cls("w1","dog"),cls("w2","dog")])], labelCategories=["cat","dog"]))
cadd("a label outside labelCategories", {"entries":2,"labeled":["0","1"]}, body=req([obj("0",[cls("w1","cat")]), obj("1",[cls("w1","zebra"),cls("w2","dog")])], labelCategories=["cat","dog"]))
cadd("workerId missing", {"entries":2,"labeled":["1"],"failed":["0"]}, body=req([obj("0",[{"annotationData":{"content":json.dumps({"animal":{"label":"cat"}})}}]), good[1]]))
cadd("a label with a comma and quotes", {"entries":1,"labeled":["0"],"class_name":{"0":"a \"b\", c"}}, body=req([obj("0",[cls("w1",'a "b", c')])]))
cadd("datasetObjectId with ../ and NUL", {"entries":1,"labeled":["../../x\u0000"]}, body=req([obj("../../x\u0000",[cls("w1","cat")])]))
cadd("an answer nested past serde_json's limit", {"entries":3,"labeled":["0","1"],"failed":["2"]}, body=req(good+[obj("2",[{"workerId":"w1","annotationData":{"content":"["*300+"]"*300}}])]))
many=[obj(str(i),[cls(f"w{j}",f"L{i}-{j}") for j in range(3)]) for i in range(700)]
cadd("2,100 distinct labels and no labelCategories (a worker model would need 4.4e6 cells per worker, 13e6 in all)", {"entries":700,"labeled":[str(i) for i in range(700)]}, body=req(many))
cadd("a multi-select answer of 20,000 labels", {"entries":1,"labeled":["0"]}, body=dict(req([obj("0",[{"workerId":f"w{j}","annotationData":{"content":json.dumps({"animal":{"labels":[f"L{k}" for k in range(20000)]}})}} for j in range(2)])]), labelAttributeName="animal"))
with open("annotation-consolidation.jsonl","w") as f:
    for c in C: f.write(json.dumps(c)+"\n")
print(len(C))

ev=json.load(open("../../functions/auto-chainer/tests/fixtures/event-stopped.json"))
import copy
A=[]
def aadd(case, code, body=None, raw=None):
    c={"case":case,"expect":{"rejected":code}}
    if raw is not None: c["raw"]=raw
    else: c["body"]=body
    A.append(c)
def mod(f):
    e=copy.deepcopy(ev); f(e); return e
aadd("truncated JSON", "InvalidEvent.Malformed", raw=json.dumps(ev)[:60])
aadd("a JSON string", "InvalidEvent.WrongSource", body="hello")
aadd("another source", "InvalidEvent.WrongSource", body=mod(lambda e: e.__setitem__("source","aws.s3")))
aadd("source missing", "InvalidEvent.WrongSource", body=mod(lambda e: e.pop("source")))
aadd("another detail-type", "InvalidEvent.WrongDetailType", body=mod(lambda e: e.__setitem__("detail-type","SageMaker Ground Truth Labeling Task Status Change")))
aadd("no resources", "InvalidEvent.NoJobArn", body=mod(lambda e: e.__setitem__("resources",[])))
aadd("resources not an array", "InvalidEvent.Malformed", body=mod(lambda e: e.__setitem__("resources","arn")))
aadd("a training-job ARN", "InvalidEvent.BadJobArn", body=mod(lambda e: e.__setitem__("resources",["arn:aws:sagemaker:us-east-1:111122223333:training-job/x"])))
aadd("a job name of 1,000 characters", "InvalidEvent.BadJobArn", body=mod(lambda e: e.__setitem__("resources",["arn:aws:sagemaker:us-east-1:111122223333:labeling-job/"+"a"*1000])))
aadd("status InProgress", "InvalidEvent.UnexpectedStatus", body=mod(lambda e: e["detail"].__setitem__("LabelingJobStatus","InProgress")))
aadd("detail empty", "InvalidEvent.Malformed", body=mod(lambda e: e.__setitem__("detail",{})))
aadd("nesting past serde_json's limit", "InvalidEvent.Malformed", raw="["*1000)
with open("auto-chainer.jsonl","w") as f:
    for c in A: f.write(json.dumps(c)+"\n")
print(len(A))
